"""report.py: a divergence becomes a replayable JSON file, a pytest test, a Go test and a report."""

from __future__ import annotations

import json

from palloc.goref import ops as O
from palloc.goref.compare import Divergence
from palloc.goref.fuzz import Case
from palloc.goref.report import case_id, load_case, write_failure

OPS = [O.Grow(0x3000000000, 0x400000), O.Alloc(1), O.Alloc(1), O.AllocToCache(0), O.CacheAlloc(0, 2), O.Free(0x3000000000, 1)]


def _case(**kw) -> Case:
    d = Divergence(2, OPS[2], "state", ["searchAddr: model 0x3000000000 (chunk 0x200c000 page 0), runtime 0x3000002000 (chunk 0x200c000 page 1)"])
    base = dict(goarch="amd64", go_version="1.27.3", init=None, ops=list(OPS), model_variant="search-addr-update-skipped", divergence=d)
    base.update(kw)
    return Case(**base)


def test_failure_is_written_in_five_forms(tmp_path):
    paths = write_failure(_case(), tmp_path)
    assert set(paths) == {"json", "pytest", "go", "report", "html"}
    assert all(p.is_file() for p in paths.values())


def test_json_file_replays_the_same_case(tmp_path):
    case = _case(init={"chunks": {0x200C000: [[0, 10]], 0x200C001: []}, "scav": {0x200C001: [[3, 4]]}})
    paths = write_failure(case, tmp_path)
    back = load_case(paths["json"])
    assert back.ops == case.ops and back.init == case.init and back.model_variant == case.model_variant
    assert json.loads(paths["json"].read_text())["divergence"]["kind"] == "state"


def test_pytest_regression_is_valid_python_naming_the_case(tmp_path):
    paths = write_failure(_case(), tmp_path)
    src = paths["pytest"].read_text()
    compile(src, str(paths["pytest"]), "exec")
    assert f"def test_{case_id(_case())}_model_and_runtime_agree" in src
    assert "O.Grow(base=0x3000000000, size=0x400000)," in src


def test_go_test_uses_the_runtime_exports_with_the_models_expected_values(tmp_path):
    src = write_failure(_case(model_variant=None), tmp_path)["go"].read_text()
    assert "package runtime_test" in src and "func TestPallocFuzz" in src
    assert "b := NewPallocEmptyPageAlloc()" in src and "b.PallocGrow(0x3000000000, 0x400000)" in src
    # The model's answer for Alloc(1) on a fresh chunk: its first page, one scavenged page.
    assert "if addr != 0x3000000000 || scav != 0x2000 {" in src
    assert "c := b.AllocToCache()" in src and "caches[0].Alloc(2)" in src
    assert "b.PallocSearchAddr()" in src and "DiffPallocBits" in src
    assert "// step 2: Alloc(npages=1)  // <- the divergence" in src


def test_go_test_builds_new_page_alloc_heaps(tmp_path):
    case = _case(init={"chunks": {0x200C000: [[0, 10]]}, "scav": {0x200C000: [[20, 5]]}}, ops=[O.Alloc(1)])
    src = write_failure(case, tmp_path)["go"].read_text()
    assert "b := NewPageAlloc(map[ChunkIdx][]BitRange{" in src and "0x200c000: {{0, 10}}," in src


def test_human_report_names_the_operation_and_the_differing_state(tmp_path):
    text = write_failure(_case(), tmp_path)["report"].read_text()
    assert "state divergence at step 2: Alloc(npages=1)" in text
    assert "searchAddr: model 0x3000000000" in text
    assert "palloc replay" in text
