"""Inputs for the translated runtime functions: random plus edges, shaped by tv_functions.toml.

Mirrors no Go file. Each parameter has a generator named in its function's `gen` table
(tv_functions.toml): bitmaps are drawn from the shapes that matter to the bit searches (empty,
full, a single free run at every offset, runs straddling words, random density), summaries as
well-formed packed triples, addresses around arenaBaseOffset and the ends of the address space,
counts at both ends of their ranges. Draws that miss the function's precondition are discarded
(smt_go evaluates it), so tie tests and the equivalence pre-pass only ask what callers ask.
"""

from __future__ import annotations

import random
from typing import Any, Iterator

M64 = (1 << 64) - 1


def _consts_num(expr: str, consts: dict) -> int:
    env = {k: v for k, v in consts.items() if isinstance(v, int)}
    return int(eval(expr, {"__builtins__": {}}, env))  # expressions from our own toml only


def _range(spec: str, consts: dict) -> tuple[int, int]:
    lo, _, hi = spec.partition("..")
    return _consts_num(lo, consts), _consts_num(hi, consts)


def _ints(lo: int, hi: int, r: random.Random) -> int:
    edges = [lo, hi, lo + 1, hi - 1, (lo + hi) // 2]
    if r.random() < 0.4:
        return min(max(r.choice(edges), lo), hi)
    return r.randint(lo, hi)


def word(r: random.Random) -> int:
    k = r.random()
    if k < 0.08:
        return r.choice([0, M64, 1, 1 << 63, M64 ^ 1, M64 >> 1])
    if k < 0.35:  # one run of ones (or zeros) at a random place
        a = r.randrange(64)
        b = r.randint(a + 1, 64)
        run = ((1 << (b - a)) - 1) << a
        return run if r.random() < 0.5 else M64 ^ run
    if k < 0.6:  # a few runs
        x = 0
        for _ in range(r.randint(1, 5)):
            a = r.randrange(64)
            b = r.randint(a + 1, min(64, a + r.choice([1, 2, 3, 8, 20, 64])))
            x |= ((1 << (b - a)) - 1) << a
        return x if r.random() < 0.5 else M64 ^ x
    d = r.choice([1, 2, 3])
    x = r.getrandbits(64)
    for _ in range(d - 1):
        x = (x | r.getrandbits(64)) if r.random() < 0.5 else (x & r.getrandbits(64))
    return x


def bitmap(nwords: int, r: random.Random) -> list[int]:
    k = r.random()
    npages = 64 * nwords
    if k < 0.06:
        return [r.choice([0, M64])] * nwords
    if k < 0.35:  # a full chunk with one free run [a, b), at every offset over many draws
        a = r.randrange(npages)
        b = r.randint(a + 1, min(npages, a + r.choice([1, 2, 7, 63, 64, 65, 128, npages])))
        v = (1 << npages) - 1
        v ^= ((1 << (b - a)) - 1) << a
        if r.random() < 0.5:
            v ^= (1 << npages) - 1  # or its complement: an empty chunk with one allocated run
        return [(v >> (64 * i)) & M64 for i in range(nwords)]
    return [word(r) for _ in range(nwords)]


def free_runs(words, ones: bool = False) -> list[int]:
    """Lengths of the maximal runs of free pages (0 bits; 1 bits when ones) of a bitmap or word."""
    if words is None:
        return []
    if isinstance(words, int):
        words = [words]
    bits = "".join(format(w, "064b")[::-1] for w in words)
    want = "1" if ones else "0"
    out, n = [], 0
    for c in bits + ("0" if ones else "1"):
        if c == want:
            n += 1
        elif n:
            out.append(n)
            n = 0
    return out


def _pack(consts, s, m, e) -> int:
    L, M = consts["logMaxPackedValue"], consts["maxPackedValue"]
    if m == M:
        return 1 << 63
    return (s & (M - 1)) | ((m & (M - 1)) << L) | ((e & (M - 1)) << (2 * L))


def wf_triple(n: int, r: random.Random) -> tuple[int, int, int]:
    """A well-formed (start, max, end) of an n-page range (see smt_go.Pre.wf_sum)."""
    if r.random() < 0.2:
        return n, n, n
    if r.random() < 0.2:
        return 0, 0, 0
    st = r.randint(0, n - 1)
    en = r.randint(0, n - 1 - st)
    mx = r.randint(max(st, en), n - 1)
    return st, mx, en


def value(gen: str, t, consts: dict, r: random.Random, ctx: dict) -> Any:
    """One draw of generator gen for a parameter of smt_go type t."""
    C = consts["pallocChunkPages"]
    ptr_bits = 8 * (consts.get("_ptrSize") or 8)
    if ".." in gen and not gen.startswith("fit:"):
        return _ints(*_range(gen, consts), r)
    if gen == "bitmap":
        return bitmap(C // 64, r)
    if gen == "word":
        return word(r)
    if gen == "data":
        return {"pallocBits": bitmap(C // 64, r), "scavenged": bitmap(C // 64, r)}
    if gen == "sum":
        if r.random() < 0.1:
            return r.getrandbits(64)  # any code: the accessors take every uint64
        return _pack(consts, *wf_triple(consts["maxPackedValue"], r))
    if gen == "level":
        lo, step = consts["logPallocChunkPages"], consts["summaryLevelBits"]
        top = consts["logMaxPackedValue"] - step
        return r.choice(list(range(lo, top + 1, step)))
    if gen == "children":
        lg = ctx["logMaxPagesPerSum"]
        return [_pack(consts, *wf_triple(1 << lg, r)) for _ in range(8)]
    if gen.startswith("fit:"):
        # A length that fits a free run exactly (the boundary of every >= / > test), else random.
        lo, hi = _range(gen[4:], consts)
        runs = free_runs(ctx.get("b") or (ctx.get("c") or {}).get("cache"), ones=isinstance(ctx.get("c"), dict))
        runs = [n for n in runs if lo <= n <= hi]
        if runs and r.random() < 0.5:
            return r.choice(runs)
        return _ints(lo, hi, r)
    if gen == "npages":
        return _ints(1, C, r) if r.random() < 0.5 else r.choice([1, 2, 3, 63, 64, 65, 128, C - 1, C])
    if gen == "range_len":
        i = ctx.get("i", 0)
        return _ints(1, C - i, r)
    if gen == "pow2_64":
        return 1 << r.randint(0, 6)
    if gen == "pow2_8":
        return r.choice([0, 1, 2, 4, 8, 16, 32, 64, 128])
    if gen == "bool":
        return r.random() < 0.5
    if gen == "gen":
        return r.choice([0, 1, 2, 7, (1 << 32) - 1, r.getrandbits(32)])
    if gen in ("addr", "offaddr", "range", "cache", "chunk", "scavdata", "any"):
        return _shaped(gen, t, consts, r, ptr_bits)
    raise ValueError(f"unknown input generator {gen!r}")


def _addr(consts, r, bits) -> int:
    mask = (1 << bits) - 1
    abo = consts["arenaBaseOffset"]
    chunk = consts["pallocChunkBytes"]
    k = r.random()
    if k < 0.15:
        return r.choice([0, mask, abo, (abo - 1) & mask, (abo + chunk) & mask, 1 << (bits - 1)])
    if k < 0.6:  # inside the heap's offset space
        off = r.getrandbits(consts["heapAddrBits"])
        if r.random() < 0.5:
            off &= ~(consts["pageSize"] - 1)
        return (off + abo) & mask
    return r.getrandbits(bits)


def _shaped(gen, t, consts, r, bits):
    if gen == "addr":
        return _addr(consts, r, t.bits if t.kind == "int" else bits)
    if gen == "offaddr":
        return {"a": _addr(consts, r, bits)}
    if gen == "range":
        a = _addr(consts, r, bits)
        b = (a + r.choice([0, 1, 8192, consts["pallocChunkBytes"], r.getrandbits(24)])) & ((1 << bits) - 1)
        if r.random() < 0.2:
            a, b = b, a
        return {"base": {"a": a}, "limit": {"a": b}}
    if gen == "cache":
        base = _addr(consts, r, bits) & ~(64 * consts["pageSize"] - 1)
        return {"base": base, "cache": word(r), "scav": word(r)}
    if gen == "chunk":
        top = 1 << (consts["heapAddrBits"] - consts["logPallocChunkPages"] - 13)
        return r.choice([0, 1, top - 1, r.randrange(top), r.getrandbits(t.bits)])
    if gen == "scavdata":
        C = consts["pallocChunkPages"]
        return {"inUse": _ints(0, C, r), "lastInUse": _ints(0, C, r), "gen": r.choice([0, 1, 5, (1 << 32) - 1]),
                "scavChunkFlags": r.randint(0, 63)}
    # any: the type's full range, edges first
    if t.kind == "int":
        w = t.bits
        return r.choice([0, 1, (1 << w) - 1, 1 << (w - 1), r.getrandbits(w), r.getrandbits(w) >> r.randrange(w)])
    if t.kind == "bool":
        return r.random() < 0.5
    raise ValueError(f"generator 'any' cannot draw a {t.kind}")


def draws(prog, fname: str, spec, r: random.Random, n: int, max_tries: int | None = None) -> Iterator[dict]:
    """Up to n argument dicts for fname meeting its precondition (checked by smt_go)."""
    from palloc.proofs import smt_go as G

    consts = dict(prog.consts)
    consts["_ptrSize"] = prog.ptr_size
    gens = spec.raw.get("gen", {})
    f = prog.funcs[fname]
    params = ([f["recv"]] if "recv" in f else []) + f["params"]
    canon = dict(zip([p["name"] for p in params], spec.raw.get("params", [p["name"] for p in params])))
    # Generators that depend on another parameter come after it.
    order = sorted(params, key=lambda p: gens.get(canon[p["name"]], "") in ("children", "range_len")
                   or gens.get(canon[p["name"]], "").startswith("fit:"))
    tries, got = 0, 0
    max_tries = max_tries or 20 * n
    while got < n and tries < max_tries:
        tries += 1
        args: dict = {}
        ctx: dict = {}
        for p in order:
            name = canon[p["name"]]
            t = prog.t(p["type"])
            g = gens.get(name, "any")
            v = value(g, t.elem if t.kind == "pointer" and g not in ("any",) else t, consts, r, ctx)
            args[p["name"]] = v
            ctx[name] = v
        if not G.holds(prog, spec, args):
            continue
        got += 1
        yield args


def global_draw(prog, spec, r: random.Random) -> dict:
    """Values of the run-time variables a function reads (physPageSize, physHugePageSize)."""
    out = {}
    for name, _, _ in spec.globals:
        if name not in prog.globals:
            continue
        if name == "physPageSize":
            out[name] = r.choice([4096, 8192, 16384, 65536, 512 << 10])
        elif name == "physHugePageSize":
            out[name] = r.choice([0, 2 << 20, 1 << 20, 8192, prog.consts["pallocChunkBytes"]])
        else:
            raise ValueError(f"no generator for the run-time variable {name}")
    return out
