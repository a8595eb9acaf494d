"""Go tests that paste (goref/gotest_paste.py): a divergence visible through the stock
export_test.go API gets a test in mpagealloc_test.go's style that names nothing of palloc's
overlay; one only internal state witnesses gets the overlay's test, saying so in its first line;
and (slow) the stock one builds into the runtime's own tests without the overlay, failing on a
mutant and passing on the stock runtime."""

from __future__ import annotations

from pathlib import Path

import pytest

from palloc.goref import gotest_paste as paste
from palloc.goref import ops as O
from palloc.goref.compare import Divergence
from palloc.goref.fuzz import Case, goarch_platform
from palloc.goref.report import case_id, model_run, write_failure

MUTANTS = Path(__file__).resolve().parents[2] / "goref" / "mutants"


def _b1_case(kind: str = "result", step: int = 2) -> Case:
    # B1 (the mutant: find1 answers one page too far): the second one-page alloc lands on page 2.
    p = goarch_platform("amd64")
    base = (p.base_chunk_idx * p.palloc_chunk_bytes + p.arena_base_offset) & p.uintptr_mask
    ops = [O.Grow(base, p.palloc_chunk_bytes), O.Alloc(1), O.Alloc(1)]
    c = Case("amd64", "1.27", None, ops)
    c.divergence = Divergence(step, ops[step], kind, ["model (0x..., 0x2000), runtime (0x..., 0x2000)"])
    return c


def test_a_result_divergence_of_a_stock_call_gets_a_test_of_the_stock_api_alone():
    c = _b1_case()
    src = paste.go_test_for(c, case_id(c), model_run(c))
    assert paste.stock_only(src) == [], src
    assert "b := NewPageAlloc(map[ChunkIdx][]BitRange{\n\t\tBaseChunkIdx: {},\n\t}, map[ChunkIdx][]BitRange{\n" \
           "\t\tBaseChunkIdx: {{0, PallocChunkPages}},\n\t})" in src
    assert "if addr != PageBase(BaseChunkIdx, 1) || scav != PageSize {" in src
    assert src.count("b.Alloc(1)") == 2 and src.count("t.Errorf") == 1  # only the diverging call is checked
    assert "PallocSearchAddr" not in src and "DiffPallocBits" not in src  # no end-state checks
    assert "paste it into src/runtime/mpagealloc_test.go" in src.splitlines()[1]
    assert "func TestPageAllocPalloc" in src


def test_a_state_divergence_gets_the_overlay_test_saying_so_in_its_first_line(tmp_path):
    c = _b1_case("state", 1)
    path = write_failure(c, tmp_path)["go"]
    src = path.read_text()
    assert src.splitlines()[0] == paste.OVERLAY_FIRST_LINE
    assert paste.stock_only(src)  # it uses the overlay's exports
    assert "needs palloc's overlay" in (tmp_path / f"{case_id(c)}.txt").read_text()


def test_a_case_with_an_operation_the_stock_api_lacks_has_no_stock_form():
    c = _b1_case()
    c.ops = [c.ops[0], O.Find(3), *c.ops[1:]]
    assert paste.stock_form(c) is None
    c2 = _b1_case()
    c2.ops = [*c2.ops[:2], O.Grow(c2.ops[0].base + 2 * goarch_platform("amd64").palloc_chunk_bytes,
                                  goarch_platform("amd64").palloc_chunk_bytes), c2.ops[2]]
    assert paste.stock_form(c2) is None  # a grow after an alloc: no NewPageAlloc table says that


def test_stock_only_names_the_overlays_exports():
    assert paste.stock_only("b := NewPallocEmptyPageAlloc(); b.PallocGrow(1, 2); var x PallocBits; "
                            "var d PallocData; PallocChunkPages") == ["NewPallocEmptyPageAlloc", "PallocGrow"]


def _find_case() -> Case:
    # B1 as verify-change finds it: pallocBits.find(1, ...) says the next search starts one page on.
    op = O.BitsFind(((1 << 512) - 1) ^ (1 << 449), 1, 0)
    c = Case("amd64", "1.27", None, [op])
    c.divergence = Divergence(0, op, "spec", ["breaks pure_functions_exact: returned (0x1c1, 0x1c2), its definition "
                                              "gives (0x1c1, 0x1c1)"])
    return c


def test_a_pure_functions_divergence_gets_a_stock_test_for_its_own_file():
    c = _find_case()
    src = paste.go_test_for(c, case_id(c), model_run(c))
    assert paste.stock_only(src) == [] and "paste it into src/runtime/mpallocbits_test.go" in src
    assert "i, si := bits.Find(1, 0)" in src and "if i != 449 || si != 449 {" in src
    assert "NewPageAlloc" not in src and "FreePageAlloc" not in src  # no allocator for a pure function


@pytest.mark.go
@pytest.mark.slow
def test_the_stock_test_pastes_into_the_runtime_fails_on_a_mutant_and_passes_on_stock(tmp_path, need_helper):
    from palloc.goref import patch
    from palloc.goref.toolchain import find_toolchain

    need_helper("amd64")
    c = _find_case()
    go = tmp_path / "case_test.go"
    go.write_text(paste.go_test_for(c, case_id(c), model_run(c)))
    tc = find_toolchain()
    stock = paste.run_pasted(go, "amd64")
    assert stock.passed, stock.output[-2000:]
    ov = patch.apply_patch(MUTANTS / "01-b1-find1-addr-plus-one.patch", tc.goroot, tmp_path / "ov")
    broken = paste.run_pasted(go, "amd64", extra_overlay=dict(ov.files))
    assert not broken.passed and broken.outcome == "fail", broken.output[-2000:]
    assert any("bits.Find(1, 0) = (0x1c1, 0x1c2), want (0x1c1, 0x1c1)" in e for e in broken.errors), broken.errors
