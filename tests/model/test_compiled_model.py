"""The model as installed (hot modules compiled by Cython, setup.py) against the interpreted model.

Both run in child Pythons, one with PALLOC_INTERPRETED=1: the same seeded run (the standard
workload on two platforms, then scavenging, page caches and more workload) must end with the
same alloc addresses and the same allocator state, to the last summary entry.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from palloc import model
from palloc.model import INTERPRETED_ENV

_RUN = """
import json, sys
from palloc import model
from palloc.goref.model_side import ModelSide
from palloc.model import workload
from palloc.spec.constants import platform

seed, ops = int(sys.argv[1]), int(sys.argv[2])
out = {"build": model.build(), "runs": []}
for name in ("linux/amd64", "linux/386"):
    p = platform(name)
    pa = workload.standard_page_alloc(p)
    st = workload.replay(workload.trace_list(seed, ops), pa.alloc, pa.free, record=True)
    released = [pa.scavenge(n * p.palloc_chunk_bytes // 4) for n in (1, 3, 9)]
    caches = [pa.alloc_to_cache() for _ in range(3)]
    for c in caches[:2]:
        c.flush(pa)
    st2 = workload.replay(workload.trace_list(seed + 1, ops // 2), pa.alloc, pa.free, record=True)
    side = ModelSide(p)
    side.pa = pa
    out["runs"].append({
        "platform": name,
        "addresses": st.results + st2.results,
        "released": released,
        "caches": [(c.base, c.cache, c.scav) for c in caches],
        "state": side.state().to_json(),
    })
print(json.dumps(out))
"""


def _run(interpreted: bool, seed: int = 1, ops: int = 6000) -> dict:
    env = {k: v for k, v in os.environ.items() if k != INTERPRETED_ENV}
    if interpreted:
        env[INTERPRETED_ENV] = "1"
    r = subprocess.run([sys.executable, "-c", _RUN, str(seed), str(ops)], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)


def _first_difference(a: dict, b: dict) -> str | None:
    for ra, rb in zip(a["runs"], b["runs"]):
        for key in ra:
            if ra[key] != rb[key]:
                return f"{ra['platform']}: {key} differs"
    return None


needs_compiled = pytest.mark.skipif(
    not model.compiled_modules(),
    reason="this install runs the model interpreted (editable install or no C compiler): nothing compiled to compare",
)


def test_palloc_interpreted_loads_every_model_module_from_its_py():
    r = subprocess.run(
        [sys.executable, "-c", "from palloc import model; print(model.build()); "
         "print(all(__import__(f'palloc.model.{m}', fromlist=['x']).__file__.endswith('.py') for m in model.COMPILED))"],
        env={**os.environ, INTERPRETED_ENV: "1"}, capture_output=True, text=True, timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["interpreted", "True"]


def test_build_says_interpreted_exactly_when_no_module_is_compiled():
    mods, build = model.compiled_modules(), model.build()
    assert set(mods) <= set(model.COMPILED)
    assert (build == "interpreted") == (not mods)
    assert all(m in build for m in mods)


@needs_compiled
def test_compiled_model_ends_in_the_interpreted_models_state():
    compiled, interpreted = _run(False), _run(True)
    assert compiled["build"].startswith("compiled") and interpreted["build"] == "interpreted"
    # Not vacuous: thousands of addresses, summaries and chunk bitmaps on both platforms.
    for r in compiled["runs"]:
        assert len(r["addresses"]) > 4000 and any(r["addresses"])
        assert r["state"]["chunks"] and all(r["state"]["summary"])
    assert _first_difference(compiled, interpreted) is None


@needs_compiled
def test_comparison_sees_a_run_that_differs():
    # The broken variant of the comparison: a run with another seed must be told apart.
    assert _first_difference(_run(False, seed=1, ops=2000), _run(True, seed=2, ops=2000)) is not None


@pytest.mark.skipif("mpagealloc_fast" not in model.compiled_modules(), reason="mpagealloc_fast runs interpreted here")
def test_the_compiled_mpagealloc_fast_takes_its_c_types_from_the_pxd():
    # mpagealloc_fast.pxd gives merge_summaries_fast and _scan_block C integers; a build that
    # missed the .pxd (setup.py must put it on Cython's include path) computes on Python ints and
    # accepts these values, which are wider than a uint64 summary or an int64 page count.
    from palloc.model import mpagealloc_fast as M
    from palloc.spec.constants import platform

    p = platform("linux/amd64")
    with pytest.raises(OverflowError):
        M.merge_summaries_fast(p, [0, 1 << 64], p.log_palloc_chunk_pages)
    with pytest.raises(OverflowError):
        M._scan_block({}.get, 0, 1, 0, 1 << 63, 0, 0, 9, (1 << 21) - 1, 21)


def test_bench_interpreted_reports_the_interpreted_model_beside_the_installed_one(capsys):
    from palloc.cli.main import main

    assert main(["bench", "--ops", "3000", "--interpreted", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model_build"] == model.build()
    it = out["interpreted"]
    assert it["model_build"] == "interpreted" and it["ops"] == 3000
    assert it["allocs"] == out["standard"]["allocs"] and it["ops_per_second"] > 0
    assert it["as_installed_over_interpreted"] > 0


@pytest.mark.slow
def test_an_install_without_a_c_compiler_succeeds_and_runs_the_model_interpreted(tmp_path):
    # setup.py marks the compiled modules optional (cythonize drops the flag: this caught it).
    import shutil
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    src = tmp_path / "src"
    shutil.copytree(root, src, ignore=shutil.ignore_patterns("build", ".git", ".venv*", "*.egg-info", "__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-cache-dir", str(src)],
                       env={**os.environ, "CC": "/bin/false"}, capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr[-2000:]
    r = subprocess.run([str(py), "-c", "from palloc import model; print(model.build())"], capture_output=True,
                       text=True, timeout=120)
    assert r.stdout.strip() == "interpreted", r.stderr
