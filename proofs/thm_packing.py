"""Theorem 1 (packing): pallocSum's packed encoding is a bijection on valid summaries.

Statement, for a platform with L = logMaxPackedValue and M = maxPackedValue = 2^L, over
64-bit unsigned integers (Go's uint64 and uint on every platform the allocator supports):

  valid(s, m, e)  :=  0 <= s, e <= m <= M  and  (m = M  =>  s = e = M)
  (a) valid(s,m,e)                  =>  unpack(pack(s,m,e)) = (s,m,e)
  (b) valid(a), valid(b), a != b     =>  pack(a) != pack(b)
  (c) for every valid triple, start(), max(), end() agree with unpack(), and pack sets
      bit 63 (the all-free encoding) exactly when max = M
  (d) freeChunkSum = pack(C, C, C) for C = pallocChunkPages, and it is not the special
      all-free code (C < M whenever there are at least two levels)

Why it holds: each field is masked with M-1, so a value below M survives in its L bits, and
the three fields occupy disjoint bit ranges [0,L), [L,2L), [2L,3L) below bit 63 exactly when
3L <= 63; the only value that does not fit, M, can only appear as max = M, which valid()
ties to s = e = M and which pack encodes as bit 63 alone. No induction is needed: the check
is over all 2^192 triples at once, by bit-blasting, once per distinct L.

Platforms: every platform (L = 21 on 64-bit allocators, 18 on 32-bit ones, 15 on wasm from
Go 1.26), and hypothetical configurations; summaryLevelBits = 4 gives L = 25, 3L = 75 > 63,
and (a) fails: that is the broken variant `overflowing_configuration`, expected counterexample.
"""

from __future__ import annotations

from palloc.proofs import smt
from palloc.proofs import smt_encode as E
from palloc.proofs.smt import Goal, Obligation

THEOREM = "packing"


def _key(p):
    return (p.log_max_packed_value, p.palloc_chunk_pages)


def _triple(tag):
    return smt.BitVec(f"{tag}start", 64), smt.BitVec(f"{tag}max", 64), smt.BitVec(f"{tag}end", 64)


def valid(p, s, m, e):
    M = E.bv(p.max_packed_value)
    return smt.And(smt.ULE(s, m), smt.ULE(e, m), smt.ULE(m, M), smt.Implies(m == M, smt.And(s == M, e == M)))


def _show_triple(v, tag=""):
    return f"({v[tag + 'start']}, {v[tag + 'max']}, {v[tag + 'end']})"


def _round_trip(p, pack=None, impl=E):
    # impl: the implementation the theorem is discharged on: the model's encodings (E) or the
    # runtime's own translated code (smt_go.GoImpl, thm_runtime).
    pack = pack or impl.pack_palloc_sum
    s, m, e = _triple("")
    code = pack(p, s, m, e)
    us, um, ue = impl.palloc_sum_unpack(p, code)
    return Goal(
        [valid(p, s, m, e)],
        smt.And(us == s, um == m, ue == e),
        {"start": s, "max": m, "end": e, "code": code, "us": us, "um": um, "ue": ue},
        lambda v: (
            f"summary (start,max,end) = {_show_triple(v)} packs to {v['code']:#x}, "
            f"which unpacks to ({v['us']}, {v['um']}, {v['ue']}) "
            f"[logMaxPackedValue={p.log_max_packed_value}, 3 fields need {3 * p.log_max_packed_value} bits of 63]"
        ),
    )


def _injective(p, impl=E):
    a, b = _triple("a_"), _triple("b_")
    ca, cb = impl.pack_palloc_sum(p, *a), impl.pack_palloc_sum(p, *b)
    return Goal(
        [valid(p, *a), valid(p, *b), ca == cb],
        smt.And(a[0] == b[0], a[1] == b[1], a[2] == b[2]),
        {"a_start": a[0], "a_max": a[1], "a_end": a[2], "b_start": b[0], "b_max": b[1], "b_end": b[2],
         "code": ca},
        lambda v: f"summaries {_show_triple(v, 'a_')} and {_show_triple(v, 'b_')} both pack to {v['code']:#x}",
    )


def _accessors(p, impl=E):
    s, m, e = _triple("")
    code = impl.pack_palloc_sum(p, s, m, e)
    us, um, ue = impl.palloc_sum_unpack(p, code)
    return Goal(
        [valid(p, s, m, e)],
        smt.And(impl.palloc_sum_start(p, code) == us, impl.palloc_sum_max(p, code) == um,
                impl.palloc_sum_end(p, code) == ue),
        {"start": s, "max": m, "end": e, "code": code},
        lambda v: f"accessors disagree with unpack on code {v['code']:#x} from {_show_triple(v)}",
    )


def _special_code(p, impl=E):
    s, m, e = _triple("")
    code = impl.pack_palloc_sum(p, s, m, e)
    return Goal(
        [valid(p, s, m, e)],
        ((code & E.bv(1 << 63)) != 0) == (m == E.bv(p.max_packed_value)),
        {"start": s, "max": m, "end": e, "code": code},
        lambda v: f"summary {_show_triple(v)} packs to {v['code']:#x}",
    )


def _free_chunk_sum(p, impl=E):
    C = E.bv(p.palloc_chunk_pages)
    code = impl.pack_palloc_sum(p, C, C, C)
    return Goal(
        [],
        smt.And(code == E.bv(p.free_chunk_sum), code != E.bv(1 << 63)),
        {"code": code},
        lambda v: f"pack({p.palloc_chunk_pages},{p.palloc_chunk_pages},{p.palloc_chunk_pages}) = {v['code']:#x}, "
        f"freeChunkSum = {p.free_chunk_sum:#x}",
    )


def _pack_without_special_case(p, s, m, e):
    # Broken variant: forget the max == maxPackedValue special case.
    M1 = E.bv(p.max_packed_value - 1)
    L = p.log_max_packed_value
    return (s & M1) | ((m & M1) << L) | ((e & M1) << (2 * L))


OBLIGATIONS = [
    Obligation(THEOREM, "pack_unpack_round_trip", "unpack(pack(s,m,e)) = (s,m,e) for every valid summary",
               _round_trip, _key),
    Obligation(THEOREM, "pack_injective", "distinct valid summaries get distinct codes", _injective, _key),
    Obligation(THEOREM, "all_free_code_iff_max_is_max_packed",
               "bit 63 (the all-free code) is set exactly when max = maxPackedValue", _special_code, _key),
    Obligation(THEOREM, "accessors_agree_with_unpack", "start(), max(), end() agree with unpack()", _accessors, _key),
    Obligation(THEOREM, "free_chunk_sum_is_packed_full_chunk",
               "freeChunkSum = pack(C,C,C) and is not the all-free special code", _free_chunk_sum, _key),
    Obligation(THEOREM, "broken_pack_without_special_case",
               "broken variant: packing max = maxPackedValue by masking loses the value",
               lambda p: _round_trip(p, _pack_without_special_case), _key, variant_of="pack_unpack_round_trip"),
]
