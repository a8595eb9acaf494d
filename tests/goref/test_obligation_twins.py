"""Every strict obligation of the spec has a runtime-side broken variant that breaks it: a patch of
the real runtime, judged by verify-change, must come out `breaks` with that obligation named.

The twins are patches of the mutant corpus (goref/mutants/) where one breaks the obligation first,
and the patches in data/twins/ written for an obligation no mutant reaches first. Each run builds a
patched helper (a minute or more cold): slow, run with `pytest -m slow`. The cheap guards run in
the default suite: every twin patch exists and every obligation it names is one of the spec's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from palloc.spec.obligations import OBLIGATIONS

ROOT = Path(__file__).resolve().parents[2]
TWINS = ROOT / "tests" / "goref" / "data" / "twins"
CORPUS = ROOT / "goref" / "mutants"

# obligation -> the patch that breaks it first (measured by verify-change; goref/mutants/REPORT.md).
TWIN_OF = {
    "cache_takes_free_pages": TWINS / "cache_takes_free_pages.patch",
    "read_only_keeps_pages": TWINS / "read_only_keeps_pages.patch",
    "alloc_scav_bytes": TWINS / "alloc_scav_bytes.patch",
    "grow_adds_free_scavenged": TWINS / "grow_adds_free_scavenged.patch",
    "below_search_addr_allocated": CORPUS / "34-n-free-keeps-searchaddr.patch",
    "grow_adds_free_scavenged": CORPUS / "41-n-grow-not-scavenged.patch",
    "free_returns_pages": CORPUS / "44-n-pagecache-flush-drops-scav.patch",
    "scavenge_candidate_free": CORPUS / "48-n-filealigned-shift.patch",
    "forced_scavenge_exhausts_offered_chunks": CORPUS / "09-b7-free-forgets-force-cursor.patch",
}


def test_every_twin_exists_and_names_an_obligation_of_the_spec():
    for ob, patch in TWIN_OF.items():
        assert ob in OBLIGATIONS and patch.is_file(), (ob, patch)
    assert {p.stem for p in TWINS.glob("*.patch")} <= set(TWIN_OF)


@pytest.mark.slow
@pytest.mark.go
@pytest.mark.parametrize("obligation", sorted(TWIN_OF))
def test_the_twin_of_each_obligation_breaks_it(obligation, tmp_path):
    script = Path(sys.executable).with_name("palloc")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "palloc.cli"]
    r = subprocess.run(cmd + ["verify-change", str(TWIN_OF[obligation]), "--goarch", "amd64", "--json", "--seconds", "30",
                              "--jobs", "1", "--no-baseline", "--no-prove", "--failures", str(tmp_path)],
                       capture_output=True, text=True, timeout=1800)
    rep = json.loads(r.stdout)
    assert r.returncode == 1 and rep["verdict"] == "breaks", rep
    diff = next(c for c in rep["checks"] if c["name"] == "differential")
    assert diff["evidence"].get("obligation") == obligation, diff["detail"]
