"""Symbolic execution of the Go runtime's own functions into Z3 bit-vector terms.

Mirrors no Go file: it gives Go's semantics (The Go Programming Language Specification, the
version of each toolchain 1.21-1.27) to the typed syntax trees that goref/goast/main.go writes
for the runtime's src/runtime/mpallocbits.go, mpagealloc.go, mgcscavenge.go, mranges.go and
mpagecache.go, with every constant already folded by go/types for the platform.

Layers, as in Alive2: the *semantics* of each Go construct is written once here, in terms of a
handful of SMT-LIB bit-vector primitives; a *domain* implements those primitives, either as Z3
terms (Z3Dom, for proofs) or as Python integers (PyDom, for evaluating a translation on
thousands of concrete inputs in tie tests). PyDom follows SMT-LIB's definitions, not Go's, and
tests/proofs/test_tv_executor.py ties it to Z3 operation by operation; so a tie test run in
PyDom checks the very translation the proofs use.

What is translated, exactly as Go defines it:
  integers of every width the platform gives them (uint, uintptr, int: 32 or 64 bits), wrapping
  arithmetic, Go's shift rules (a count of the width or more gives 0, or the sign for a signed
  >>; a negative signed count panics), conversions (truncate, zero- or sign-extend), `&^`,
  comparisons, division (by zero panics), bools with short-circuit && and ||; arrays
  ([8]uint64 pallocBits), structs (pallocData, offAddr, scavChunkData, addrRange, pageCache),
  pointers to them, slices of an array with a stated length; methods and calls between
  translated functions (inlined), closures, if/switch (fallthrough included)/early return,
  labelled break and continue, for loops unrolled to a bound taken from the loop itself (a
  constant trip count) or stated by the caller, range over arrays; the intrinsics
  sys.TrailingZeros64/LeadingZeros64/OnesCount64 (also at 32 and 8 bits), bits.Len*, and the
  builtins len, min, max, clear, print/println (no effect); throw and panic as error outcomes,
  as are index out of range, slice bounds, nil dereference and division by zero.

Anything else raises Unsupported("<construct> at file:line"): nothing is approximated. A loop
that may still run after its bound is recorded in Outcome.incomplete with its condition; a
proof must show that condition unsatisfiable (tv.py does), so a bound too small is an
`unknown`, never a silent proof.

Broken variants of the translator (BROKEN_VARIANTS) exist so tests can show they are caught.
"""

from __future__ import annotations

import ast as pyast
import dataclasses
from typing import Any, Callable

import z3

# --- domains ----------------------------------------------------------------------------------


class Z3Dom:
    """SMT-LIB bit-vector primitives as Z3 terms."""

    symbolic = True

    def const(self, v: int, w: int):
        return z3.BitVecVal(v % (1 << w), w)

    def bool(self, b: bool):
        return z3.BoolVal(bool(b))

    def var(self, name: str, w: int):
        return z3.BitVec(name, w)

    def bvar(self, name: str):
        return z3.Bool(name)

    def is_true(self, c) -> bool:
        return z3.is_true(c)

    def is_false(self, c) -> bool:
        return z3.is_false(c)

    def as_int(self, x):
        """The Python int of a constant term, else None."""
        return x.as_long() if z3.is_bv_value(x) else None

    def norm(self, x, limit: int = 400):
        """x in Z3's normal form when it is a small term (at most limit nodes), so that one index
        or loop test reached two ways (k+1+1 and lo+2; k < j/64 and lo+t < hi) is one term, and
        what is built on it is shared by the two versions compared. Large terms are left as they
        are (normalising them costs more than it saves)."""
        seen, todo = set(), [x]
        while todo:
            t = todo.pop()
            if t.get_id() in seen:
                continue
            seen.add(t.get_id())
            if len(seen) > limit:
                return x
            todo.extend(t.children())
        return z3.simplify(x)

    # band and bor are duals written out: one helper over (absorbing, identity, z3 op) would
    # hide which constant decides.
    def band(self, a, b):
        if z3.is_false(a) or z3.is_false(b):
            return z3.BoolVal(False)
        if z3.is_true(a):
            return b
        if z3.is_true(b):
            return a
        return z3.And(a, b)

    def bor(self, a, b):
        if z3.is_true(a) or z3.is_true(b):
            return z3.BoolVal(True)
        if z3.is_false(a):
            return b
        if z3.is_false(b):
            return a
        return z3.Or(a, b)

    def bnot(self, a):
        if z3.is_true(a):
            return z3.BoolVal(False)
        if z3.is_false(a):
            return z3.BoolVal(True)
        return z3.Not(a)

    def ite(self, c, a, b):
        if z3.is_true(c):
            return a
        if z3.is_false(c):
            return b
        if a is b or (not isinstance(a, bool) and a.eq(b)):
            return a
        return z3.If(c, a, b)

    def beq(self, a, b):  # bool == bool
        return a == b

    # The rest fold when every operand is a constant, so concrete runs stay small.
    def _f(self, t, *xs):
        return z3.simplify(t) if all(z3.is_bv_value(x) for x in xs) else t

    def _fb(self, t, *xs):
        return z3.simplify(t) if all(z3.is_bv_value(x) for x in xs) else t

    def add(self, a, b):
        return self._f(a + b, a, b)

    def sub(self, a, b):
        return self._f(a - b, a, b)

    def mul(self, a, b):
        return self._f(a * b, a, b)

    def udiv(self, a, b):
        return self._f(z3.UDiv(a, b), a, b)

    def urem(self, a, b):
        return self._f(z3.URem(a, b), a, b)

    def sdiv(self, a, b):
        return self._f(a / b, a, b)

    def srem(self, a, b):
        return self._f(z3.SRem(a, b), a, b)

    def and_(self, a, b):
        return self._f(a & b, a, b)

    def or_(self, a, b):
        return self._f(a | b, a, b)

    def xor(self, a, b):
        return self._f(a ^ b, a, b)

    def not_(self, a):
        return self._f(~a, a)

    def shl(self, a, s):
        return self._f(a << s, a, s)

    def lshr(self, a, s):
        return self._f(z3.LShR(a, s), a, s)

    def ashr(self, a, s):
        return self._f(a >> s, a, s)

    def eq(self, a, b):
        return self._fb(a == b, a, b)

    def ult(self, a, b):
        return self._fb(z3.ULT(a, b), a, b)

    def ule(self, a, b):
        return self._fb(z3.ULE(a, b), a, b)

    def slt(self, a, b):
        return self._fb(a < b, a, b)

    def sle(self, a, b):
        return self._fb(a <= b, a, b)

    def zext(self, a, w_from: int, w_to: int):
        return self._f(z3.ZeroExt(w_to - w_from, a), a)

    def sext(self, a, w_from: int, w_to: int):
        return self._f(z3.SignExt(w_to - w_from, a), a)

    def trunc(self, a, w_from: int, w_to: int):
        return self._f(z3.Extract(w_to - 1, 0, a), a)


class PyDom:
    """The same primitives on Python ints (in [0, 2^w)) and bools, by SMT-LIB's definitions."""

    symbolic = False

    def const(self, v: int, w: int):
        return v % (1 << w)

    def bool(self, b: bool):
        return bool(b)

    def is_true(self, c) -> bool:
        return c is True

    def is_false(self, c) -> bool:
        return c is False

    def as_int(self, x):
        return x

    def norm(self, x):
        return x

    def band(self, a, b):
        return a and b

    def bor(self, a, b):
        return a or b

    def bnot(self, a):
        return not a

    def ite(self, c, a, b):
        return a if c else b

    def beq(self, a, b):
        return a == b

    # The width-dependent primitives are in Ops, which knows the width at every call.


def _py_signed(x: int, w: int) -> int:
    return x - (1 << w) if x >> (w - 1) else x


# Width-generic helpers for both domains: (dom, w) -> op. Z3 knows the width from the terms;
# PyDom needs it passed. Keeping the call sites uniform keeps the semantics in one place.


class Ops:
    """Primitive operations at width w over a domain."""

    def __init__(self, dom):
        self.d = dom
        self.py = not dom.symbolic

    def add(self, a, b, w):
        return (a + b) & ((1 << w) - 1) if self.py else self.d.add(a, b)

    def sub(self, a, b, w):
        return (a - b) & ((1 << w) - 1) if self.py else self.d.sub(a, b)

    def mul(self, a, b, w):
        return (a * b) & ((1 << w) - 1) if self.py else self.d.mul(a, b)

    def udiv(self, a, b, w):
        if self.py:
            return a // b if b else (1 << w) - 1
        return self.d.udiv(a, b)

    def urem(self, a, b, w):
        if self.py:
            return a % b if b else a
        return self.d.urem(a, b)

    def sdiv(self, a, b, w):
        if self.py:
            sa, sb = _py_signed(a, w), _py_signed(b, w)
            if sb == 0:
                return 1 if sa < 0 else (1 << w) - 1
            q = abs(sa) // abs(sb)
            return (q if (sa < 0) == (sb < 0) else -q) % (1 << w)
        return self.d.sdiv(a, b)

    def srem(self, a, b, w):
        if self.py:
            sa, sb = _py_signed(a, w), _py_signed(b, w)
            if sb == 0:
                return a
            r = abs(sa) % abs(sb)
            return (r if sa >= 0 else -r) % (1 << w)
        return self.d.srem(a, b)

    def and_(self, a, b, w):
        return a & b if self.py else self.d.and_(a, b)

    def or_(self, a, b, w):
        return a | b if self.py else self.d.or_(a, b)

    def xor(self, a, b, w):
        return a ^ b if self.py else self.d.xor(a, b)

    def not_(self, a, w):
        return a ^ ((1 << w) - 1) if self.py else self.d.not_(a)

    def shl(self, a, s, w):  # SMT-LIB bvshl: s >= w gives 0
        if self.py:
            return (a << s) & ((1 << w) - 1) if s < w else 0
        return self.d.shl(a, s)

    def lshr(self, a, s, w):
        if self.py:
            return a >> s if s < w else 0
        return self.d.lshr(a, s)

    def ashr(self, a, s, w):
        if self.py:
            return (_py_signed(a, w) >> min(s, w - 1)) % (1 << w)
        return self.d.ashr(a, s)

    def eq(self, a, b, w):
        return a == b if self.py else self.d.eq(a, b)

    def ult(self, a, b, w):
        return a < b if self.py else self.d.ult(a, b)

    def ule(self, a, b, w):
        return a <= b if self.py else self.d.ule(a, b)

    def slt(self, a, b, w):
        return _py_signed(a, w) < _py_signed(b, w) if self.py else self.d.slt(a, b)

    def sle(self, a, b, w):
        return _py_signed(a, w) <= _py_signed(b, w) if self.py else self.d.sle(a, b)

    def zext(self, a, wf, wt):
        return a if self.py else self.d.zext(a, wf, wt)

    def sext(self, a, wf, wt):
        if self.py:
            return _py_signed(a, wf) % (1 << wt)
        return self.d.sext(a, wf, wt)

    def trunc(self, a, wf, wt):
        return a & ((1 << wt) - 1) if self.py else self.d.trunc(a, wf, wt)

    def const(self, v, w):
        return self.d.const(v, w)


# --- programs: goast's output for one platform ------------------------------------------------


class Unsupported(Exception):
    """A construct outside the translated subset; the message names it and its place."""

    def __init__(self, what: str, pos: str = "?"):
        super().__init__(f"unsupported: {what} at {pos}")
        self.what, self.pos = what, pos


@dataclasses.dataclass(eq=False)
class GoType:
    kind: str  # int | bool | string | array | slice | pointer | struct | func | tuple | unsupported
    name: str = ""
    bits: int = 0
    signed: bool = False
    length: int = 0
    elem: "GoType | None" = None
    fields: list = dataclasses.field(default_factory=list)  # (name, GoType, embedded)
    what: str = ""

    def __repr__(self) -> str:
        return self.name or self.kind


class Program:
    """One goast result: the trees, the type table, the constants and globals of one platform."""

    def __init__(self, result: dict):
        if result.get("error"):
            raise ValueError(f"goast: {result['error']}")
        self.goos, self.goarch = result["goos"], result["goarch"]
        self.ptr_size = result["ptr_size"]
        self.funcs: dict[str, dict] = result["funcs"]
        self.globals: dict[str, dict] = result["globals"] or {}
        self.consts: dict[str, Any] = {k: (int(v) if isinstance(v, str) else v) for k, v in result["consts"].items()}
        raw = result["types"]
        self.raw_types = raw
        self.types = [GoType(kind=t["kind"]) for t in raw]
        for gt, t in zip(self.types, raw):
            gt.name = t.get("name", "")
            gt.bits = t.get("bits", 0)
            gt.signed = t.get("signed", False)
            gt.length = t.get("len", 0)
            gt.what = t.get("what", "")
            if "elem" in t:
                gt.elem = self.types[t["elem"]]
            gt.fields = [(f["name"], self.types[f["type"]], f["embedded"]) for f in t.get("fields", [])]
        self.missing = result.get("missing") or []
        self._loop_ordinals: dict[str, dict[int, int]] = {}

    @property
    def platform(self) -> str:
        return f"{self.goos}/{self.goarch}"

    def t(self, i: int) -> GoType:
        return self.types[i]

    def loop_ordinals(self, fname: str) -> dict[int, int]:
        """id(for-statement node) -> its ordinal in the function, in source order."""
        if fname not in self._loop_ordinals:
            out: dict[int, int] = {}

            def walk(n):
                if isinstance(n, dict):
                    if n.get("s") in ("for", "range"):
                        out[id(n)] = len(out)
                    for v in n.values():
                        walk(v)
                elif isinstance(n, list):
                    for v in n:
                        walk(v)

            walk(self.funcs[fname]["body"])
            self._loop_ordinals[fname] = out
        return self._loop_ordinals[fname]


# --- values -----------------------------------------------------------------------------------


class Cell:
    __slots__ = ("v",)

    def __init__(self, v):
        self.v = v


@dataclasses.dataclass(frozen=True)
class Ref:
    """A pointer: a cell and a path into it (("f", field) or ("i", k) or ("I", index, bits))."""

    cell: Cell
    path: tuple = ()

    def step(self, s) -> "Ref":
        return Ref(self.cell, self.path + (s,))


@dataclasses.dataclass(frozen=True)
class SliceV:
    """A slice of an array: [lo, hi) of the array at ref (n elements); lo, hi are int values."""

    ref: Ref
    n: int
    lo: Any
    hi: Any
    bits: int  # width of int


@dataclasses.dataclass(frozen=True)
class Closure:
    node: dict
    frame: "Frame"


@dataclasses.dataclass(frozen=True)
class FuncRef:
    name: str


class Frame:
    def __init__(self, fname: str, locals_: dict | None = None):
        self.fname = fname
        self.locals: dict[int, Cell] = {} if locals_ is None else locals_
        self.results: list[Cell] = []
        self.ret_g = None
        self.breakables: list["Loop"] = []


class Loop:
    def __init__(self, label: str | None, is_loop: bool):
        self.label, self.is_loop = label, is_loop
        self.brk = None  # guard of paths that broke out
        self.cont = None  # guard of paths that continued (this iteration)


@dataclasses.dataclass
class Outcome:
    """What one call did: results, the final values behind pointer arguments, and its errors.

    errors: (condition, kind, message, pos); kind is "throw" (runtime throw), "panic" (a
    panic, including Go's run-time errors). Conditions are disjoint: the first error ends the
    call. incomplete: (condition, pos, bound) of loops that may run past their bound.
    """

    results: list
    effects: dict
    errors: list
    incomplete: list
    dom: Any

    def error_kind(self, kind: str):
        c = self.dom.bool(False)
        for cond, k, _, _ in self.errors:
            if k == kind:
                c = self.dom.bor(c, cond)
        return c

    def any_error(self):
        c = self.dom.bool(False)
        for cond, _, _, _ in self.errors:
            c = self.dom.bor(c, cond)
        return c

    def any_incomplete(self):
        c = self.dom.bool(False)
        for cond, _, _ in self.incomplete:
            c = self.dom.bor(c, cond)
        return c


# The broken variants of the translator, each caught by a tie test or a proof (tests/proofs/
# test_tv_broken_variants.py). Each name says what the variant gets wrong.
BROKEN_VARIANTS = (
    "shift_of_width_gives_x",   # x << 64 (or >>) gives x instead of 0
    "wrapping_ignored",         # unsigned + - * saturate instead of wrapping
    "loop_one_short",           # every loop bound is one less than it should be
    "swapped_branch",           # if c {A} else {B} runs A when c is false
    "slice_range_from_zero",    # range over s[lo:hi] reads the backing array from 0, not lo
)

INTRINSICS = {}
for _pkg in ("internal/runtime/sys", "runtime/internal/sys", "math/bits"):
    for _n in ("TrailingZeros64", "TrailingZeros32", "TrailingZeros8", "TrailingZeros", "LeadingZeros64",
               "LeadingZeros32", "LeadingZeros8", "LeadingZeros", "OnesCount64", "OnesCount32", "OnesCount8",
               "OnesCount", "Len64", "Len32", "Len8", "Len"):
        INTRINSICS[f"{_pkg}.{_n}"] = _n
# Runtime functions that end the program: the error outcome "throw".
THROWS = {"throw", "fatal"}


class Executor:
    """Runs translated functions over a domain. One executor per (program, domain).

    bounds(fname, ordinal) -> int | None gives a stated loop bound (the ordinal counts for and
    range statements of the function in source order). global_inputs maps the names of package
    variables written at run time (physPageSize) to values; read-only globals with a constant
    initializer are constants.
    """

    def __init__(self, program: Program, dom=None, bounds: Callable | None = None,
                 global_inputs: dict | None = None, broken: str | None = None, watch: dict | None = None,
                 abstract: dict | None = None, ufs: dict | None = None):
        self.p = program
        self.dom = dom or Z3Dom()
        self.o = Ops(self.dom)
        self.bounds = bounds or (lambda fname, ordinal: None)
        self.global_inputs = dict(global_inputs or {})
        if broken is not None and broken not in BROKEN_VARIANTS:
            raise ValueError(f"unknown translator variant {broken!r}")
        self.broken = broken
        self.int_bits = 8 * program.ptr_size
        self._pending_label = None
        # watch: function name -> pre(args by name) -> Bool. Every call of a watched function
        # records (guard, its precondition on the actual arguments) in self.call_sites.
        self.watch = dict(watch or {})
        self.call_sites: list = []
        self._loop_scoped: tuple = ()
        # abstract: (function, loop ordinal) -> a name. Each such loop runs as uninterpreted
        # functions of the values it reads (ufs: shared by the two executors of an equivalence
        # check, so the same code is the same function on both sides); self.abstractions lists
        # every application: {"key", "pos", "g", "reads": {name: value}, "writes": {name: value}}.
        self.abstract = dict(abstract or {})
        self.ufs = {} if ufs is None else ufs
        self.abstractions: list = []

    # --- entry --------------------------------------------------------------------------

    def call(self, fname: str, args: dict[str, Any]) -> Outcome:
        """Calls fname with argument values by parameter name (the receiver by its name).

        A pointer parameter takes the value it points to; its final value is in effects. A slice
        parameter takes a list (its length is the slice's). Values: ints (domain values), bools,
        tuples for arrays, dicts for structs.
        """
        f = self.p.funcs.get(fname)
        if f is None:
            raise Unsupported(f"function {fname} (not in the translated program)", "?")
        self.errors: list = []
        self.incomplete: list = []
        self.g = self.dom.bool(True)
        self.depth = 0
        self.globals: dict[str, Cell] = {}
        cells: dict[str, Cell] = {}
        argv = []
        params = ([f["recv"]] if "recv" in f else []) + f["params"]
        for prm in params:
            t = self.p.t(prm["type"])
            v = args[prm["name"]]
            if t.kind == "pointer":
                c = Cell(v)
                cells[prm["name"]] = c
                argv.append(Ref(c))
            elif t.kind == "slice":
                c = Cell(tuple(v))
                cells[prm["name"]] = c
                argv.append(SliceV(Ref(c), len(v), self.o.const(0, self.int_bits), self.o.const(len(v), self.int_bits), self.int_bits))
            else:
                argv.append(v)
        recv = argv[0] if "recv" in f else None
        rest = argv[1:] if "recv" in f else argv
        results = self._invoke(fname, recv, rest, f["pos"])
        return Outcome(results, {k: c.v for k, c in cells.items()}, self.errors, self.incomplete, self.dom)

    # --- errors ---------------------------------------------------------------------------

    def fail(self, cond, kind: str, msg: str, pos: str) -> None:
        d = self.dom
        c = d.band(self.g, cond)
        if not d.is_false(c):
            self.errors.append((c, kind, msg, pos))
        self.g = d.band(self.g, d.bnot(cond))

    # --- types and values -----------------------------------------------------------------

    def zero(self, t: GoType, pos: str = "?"):
        if t.kind == "int":
            return self.o.const(0, t.bits)
        if t.kind == "bool":
            return self.dom.bool(False)
        if t.kind == "array":
            return tuple(self.zero(t.elem, pos) for _ in range(t.length))
        if t.kind == "struct":
            return {n: self.zero(ft, pos) for n, ft, _ in t.fields}
        if t.kind in ("pointer", "slice", "func"):
            return None
        if t.kind == "string":
            return ""
        raise Unsupported(f"zero value of {t.what or t.kind}", pos)

    def merge(self, c, a, b, pos: str = "?"):
        d = self.dom
        if d.is_true(c) or a is b:
            return a
        if d.is_false(c):
            return b
        if isinstance(a, tuple):
            return tuple(self.merge(c, x, y, pos) for x, y in zip(a, b))
        if isinstance(a, dict):
            return {k: self.merge(c, a[k], b[k], pos) for k in a}
        if isinstance(a, (Ref, SliceV, Closure, FuncRef, str)) or a is None or b is None:
            if a == b:
                return a
            raise Unsupported("a pointer, slice or function value that differs between paths", pos)
        return d.ite(c, a, b)

    def load(self, ref: Ref, pos: str):
        v = ref.cell.v
        for s in ref.path:
            v = self._select(v, s, pos)
        return v

    def _select(self, v, s, pos):
        if s[0] == "f":
            return v[s[1]]
        if s[0] == "i":
            return v[s[1]]
        _, idx, bits = s
        out = v[0]
        for k in range(1, len(v)):
            out = self.merge(self.o.eq(idx, self.o.const(k, bits), bits), v[k], out, pos)
        return out

    def store(self, ref: Ref, val, pos: str) -> None:
        if not ref.path and ref.cell in self._loop_scoped:
            # The post statement of a for loop writing a variable its init declared: every path
            # still alive and inside the loop runs it, and the paths not running it have left
            # the loop (or ended), where the variable is out of scope. Merging the old value in
            # for them would only tie the counter to the whole path condition.
            ref.cell.v = val
            return
        ref.cell.v = self._update(ref.cell.v, ref.path, val, self.g, pos)

    def _update(self, cur, path, val, g, pos):
        if not path:
            return self.merge(g, val, cur, pos)
        s = path[0]
        if s[0] == "f":
            out = dict(cur)
            out[s[1]] = self._update(cur[s[1]], path[1:], val, g, pos)
            return out
        if s[0] == "i":
            out = list(cur)
            out[s[1]] = self._update(cur[s[1]], path[1:], val, g, pos)
            return tuple(out)
        _, idx, bits = s
        d = self.dom
        return tuple(self._update(cur[k], path[1:], val, d.band(g, self.o.eq(idx, self.o.const(k, bits), bits)), pos)
                     for k in range(len(cur)))

    def index_step(self, idx, t: GoType, n: int, pos: str):
        """Checks 0 <= idx < n (Go panics otherwise) and returns the path step for idx."""
        o = self.o
        w = t.bits
        if t.signed:
            self.fail(o.slt(idx, o.const(0, w), w), "panic", "index out of range", pos)
        if n < (1 << w):
            self.fail(self.dom.bnot(o.ult(idx, o.const(n, w), w)), "panic", "index out of range", pos)
        k = self.dom.as_int(idx)
        if k is not None:
            return ("i", k if k < n else 0)
        return ("I", self.dom.norm(idx), w)

    # --- statements -----------------------------------------------------------------------

    def exec(self, s: dict, fr: Frame) -> None:
        if self.dom.is_false(self.g):
            return
        kind = s["s"]
        m = getattr(self, "_s_" + kind, None)
        if m is None:
            raise Unsupported(s.get("what", f"statement {kind}"), s.get("pos", "?"))
        m(s, fr)

    def _s_unsupported(self, s, fr):
        raise Unsupported(s["what"], s["pos"])

    def _s_block(self, s, fr):
        for x in s["list"]:
            self.exec(x, fr)

    def _s_expr(self, s, fr):
        self.eval(s["x"], fr)

    def _s_var(self, s, fr):
        vals = [self.eval(v, fr) for v in s["values"]] if s["values"] else None
        if vals is not None and len(vals) == 1 and len(s["vars"]) > 1:
            vals = list(vals[0])
        for i, v in enumerate(s["vars"]):
            if v["k"] == "blank":
                continue
            val = vals[i] if vals is not None else self.zero(self.p.t(v["t"]), s["pos"])
            fr.locals[v["id"]] = Cell(val)

    def _s_assign(self, s, fr):
        op = s["op"]
        pos = s["pos"]
        if op in ("=", ":="):
            if len(s["rhs"]) == 1 and len(s["lhs"]) > 1:
                vals = list(self.eval(s["rhs"][0], fr))
            else:
                vals = [self.eval(r, fr) for r in s["rhs"]]
            refs = []
            for l, new in zip(s["lhs"], s["define"]):
                if l["k"] == "blank":
                    refs.append(None)
                elif new:
                    refs.append("new")
                else:
                    refs.append(self.lvalue(l, fr))
            for l, r, v in zip(s["lhs"], refs, vals):
                if r is None:
                    continue
                if r == "new":
                    fr.locals[l["id"]] = Cell(v)
                else:
                    self.store(r, v, pos)
            return
        bop = op[:-1]
        l = s["lhs"][0]
        ref = self.lvalue(l, fr)
        cur = self.load(ref, pos)
        rhs = self.eval(s["rhs"][0], fr)
        t = self.p.t(l["t"])
        rt = self.p.t(s["rhs"][0]["t"])
        v = self.binop(bop, cur, rhs, t, rt, t, pos)
        self.store(ref, v, pos)

    def _s_incdec(self, s, fr):
        ref = self.lvalue(s["x"], fr)
        t = self.p.t(s["x"]["t"])
        cur = self.load(ref, s["pos"])
        one = self.o.const(1, t.bits)
        v = self.dom.norm(self.binop("+" if s["op"] == "++" else "-", cur, one, t, t, t, s["pos"]))
        self.store(ref, v, s["pos"])

    def _s_if(self, s, fr):
        d = self.dom
        if s["init"]:
            self.exec(s["init"], fr)
        c = self.eval(s["cond"], fr)
        if self.broken == "swapped_branch":
            c = d.bnot(c)
        g0 = self.g
        self.g = d.band(g0, c)
        self.exec(s["then"], fr)
        g_then = self.g
        self.g = d.band(g0, d.bnot(c))
        if s["else"]:
            self.exec(s["else"], fr)
        self.g = d.bor(g_then, self.g)

    def _s_return(self, s, fr):
        d = self.dom
        if s["results"]:
            if len(s["results"]) == 1 and len(fr.results) > 1:
                vals = list(self.eval(s["results"][0], fr))
            else:
                vals = [self.eval(r, fr) for r in s["results"]]
            for c, v in zip(fr.results, vals):
                c.v = self.merge(self.g, v, c.v, s["pos"])
        fr.ret_g = self.g if fr.ret_g is None else d.bor(fr.ret_g, self.g)
        self.g = d.bool(False)

    def _target(self, fr: Frame, label, want_loop: bool, pos):
        for b in reversed(fr.breakables):
            if label is None and (b.is_loop or not want_loop):
                return b
            if label is not None and b.label == label:
                return b
        raise Unsupported(f"branch to unknown label {label}", pos)

    def _s_branch(self, s, fr):
        d = self.dom
        tok, label = s["tok"], s.get("label")
        if tok == "break":
            b = self._target(fr, label, False, s["pos"])
            b.brk = self.g if b.brk is None else d.bor(b.brk, self.g)
        elif tok == "continue":
            b = self._target(fr, label, True, s["pos"])
            b.cont = self.g if b.cont is None else d.bor(b.cont, self.g)
        elif tok == "fallthrough":
            return  # handled by the switch
        else:
            raise Unsupported(tok, s["pos"])
        self.g = d.bool(False)

    def _s_labeled(self, s, fr):
        inner = s["stmt"]
        if inner["s"] in ("for", "range", "switch"):
            self._pending_label = s["label"]
            self.exec(inner, fr)
            return
        self.exec(inner, fr)

    def _take_label(self):
        lab = getattr(self, "_pending_label", None)
        self._pending_label = None
        return lab

    def _bound(self, s, fr, first_cond_iter):
        """The unrolling bound of a for loop: stated, else from the loop's own constant trip count."""
        ordinal = self.p.loop_ordinals(fr.fname).get(id(s))
        b = self.bounds(fr.fname, ordinal)
        if b is None:
            b = first_cond_iter
        if b is None:
            raise Unsupported(f"loop with a symbolic trip count (state its bound for {fr.fname}, loop #{ordinal})", s["pos"])
        if self.broken == "loop_one_short":
            b = max(0, b - 1)
        return b

    @staticmethod
    def _declared_cells(init, fr) -> tuple:
        """The cells of the variables a for statement's init declares (scoped to the loop)."""
        if not init or init["s"] not in ("assign", "var"):
            return ()
        if init["s"] == "assign":
            ids = [l["id"] for l, new in zip(init["lhs"], init["define"]) if new and l["k"] == "local"]
        else:
            ids = [v["id"] for v in init["vars"] if v["k"] == "local"]
        return tuple(fr.locals[i] for i in ids if i in fr.locals)

    def _derived_trip_count(self, s, fr):
        """For `for i := a; i < N; i++` (or <=, !=) with N a constant at loop entry and i unsigned or
        a constant start: at most N - a (+1) iterations. None when the loop does not look so."""
        c, post = s["cond"], s["post"]
        if not c or c.get("k") != "binary" or c["op"] not in ("<", "<=", "!=") or c["x"].get("k") != "local":
            return None
        if not post or post["s"] != "incdec" or post["op"] != "++" or post["x"].get("k") != "local" \
                or post["x"]["id"] != c["x"]["id"]:
            return None
        cell = fr.locals.get(c["x"]["id"])
        if cell is None:
            return None
        save = self.g
        n = self.dom.as_int(self.eval(c["y"], fr))
        self.g = save
        if n is None:
            return None
        t = self.p.t(c["x"]["t"])
        start = self.dom.as_int(cell.v)
        lo = start if start is not None and not (t.signed and start >> (t.bits - 1)) else (0 if not t.signed else None)
        if lo is None:
            return None
        if t.signed and n >> (t.bits - 1):
            return 0
        return max(0, n - lo + (1 if c["op"] == "<=" else 0))

    def _s_for(self, s, fr):
        d = self.dom
        label = self._take_label()
        if self.abstract and (fr.fname, self.p.loop_ordinals(fr.fname).get(id(s))) in self.abstract:
            return self._abstract_loop(s, fr, label)
        if s["init"]:
            self.exec(s["init"], fr)
        scoped = self._declared_cells(s["init"], fr)
        derived = self._derived_trip_count(s, fr)
        bound = self._bound(s, fr, derived)
        lp = Loop(label, True)
        fr.breakables.append(lp)
        exits = d.bool(False)
        try:
            for _ in range(bound):
                if d.is_false(self.g):
                    break
                c = d.norm(self.eval(s["cond"], fr)) if s["cond"] else d.bool(True)
                exits = d.bor(exits, d.band(self.g, d.bnot(c)))
                self.g = d.band(self.g, c)
                lp.cont = None
                self.exec(s["body"], fr)
                if lp.cont is not None:
                    self.g = d.bor(self.g, lp.cont)
                if s["post"]:
                    saved, self._loop_scoped = self._loop_scoped, scoped
                    try:
                        self.exec(s["post"], fr)
                    finally:
                        self._loop_scoped = saved
            if not d.is_false(self.g):
                c = d.norm(self.eval(s["cond"], fr)) if s["cond"] else d.bool(True)
                still = d.band(self.g, c)
                if not d.is_false(still):
                    self.incomplete.append((still, s["pos"], bound))
                exits = d.bor(exits, d.band(self.g, d.bnot(c)))
        finally:
            fr.breakables.pop()
        self.g = exits if lp.brk is None else d.bor(exits, lp.brk)

    def _s_range(self, s, fr):
        d = self.dom
        label = self._take_label()
        if self.abstract and (fr.fname, self.p.loop_ordinals(fr.fname).get(id(s))) in self.abstract:
            return self._abstract_loop(s, fr, label)
        xt = self.p.t(s["xt"])
        pos = s["pos"]
        x = s["x"]
        if xt.kind == "int":
            n = d.as_int(self.eval(x, fr))
            if n is None:
                raise Unsupported("range over a symbolic integer", pos)
            getter = None
            n_items = n
        elif xt.kind == "slice":
            self._range_slice(s, fr, label, pos)
            return
        else:
            at = xt.elem if xt.kind == "pointer" else xt
            if at.kind != "array":
                raise Unsupported(f"range over {at.kind}", pos)
            n_items = at.length
            # Range over an array evaluates the array once (a copy); over a pointer, reads live.
            if xt.kind == "pointer":
                ref = self.eval(x, fr)
                getter = lambda k: self.load(ref.step(("i", k)), pos)  # noqa: E731
            else:
                arr = self.eval(x, fr)
                getter = lambda k: arr[k]  # noqa: E731
        kt = self.p.t(s["key"]["t"]) if s["key"] else None
        lp = Loop(label, True)
        fr.breakables.append(lp)
        if self.broken == "loop_one_short":
            n_items = max(0, n_items - 1)
        try:
            for k in range(n_items):
                if d.is_false(self.g):
                    break
                lp.cont = None
                for which, val in (("key", lambda: self.o.const(k, kt.bits)), ("value", lambda: getter(k))):
                    tgt = s[which]
                    if tgt is None:
                        continue
                    v = val()
                    if s["define"]:
                        fr.locals[tgt["id"]] = Cell(v)
                    else:
                        self.store(self.lvalue(tgt, fr), v, pos)
                self.exec(s["body"], fr)
                if lp.cont is not None:
                    self.g = d.bor(self.g, lp.cont)
        finally:
            fr.breakables.pop()
        if lp.brk is not None:
            self.g = d.bor(self.g, lp.brk)

    def _abstract_loop(self, s, fr, label):
        """Runs loop s as uninterpreted functions: each variable it writes becomes F(the values it
        reads), and whether it ends in an error (or does not finish) a Bool G(the same). Sound for
        an equivalence check when the loop is the same code in both versions (tv.py checks that:
        identical trees, no calls but intrinsics), since Go's code is deterministic: the same
        inputs give the same outputs and the same failure on both sides."""
        d = self.dom
        pos = s["pos"]
        if not d.symbolic:
            raise Unsupported("an abstracted loop outside a proof", pos)
        key = self.abstract[(fr.fname, self.p.loop_ordinals(fr.fname).get(id(s)))]
        shape = loop_shape(s, label, lambda t: self.p.t(t).kind)
        if shape["unsupported"]:
            raise Unsupported(f"abstracting this loop: {shape['unsupported']}", pos)
        reads, leaves = {}, []
        for i in sorted(shape["free"]):
            c = fr.locals.get(i)
            if c is None:
                raise Unsupported(f"abstracting this loop: variable {shape['free'][i]} not yet declared", pos)
            v = c.v
            if isinstance(v, Ref):
                v = self.load(v, pos)
            elif isinstance(v, SliceV):
                v = (self.load(v.ref, pos), v.lo, v.hi)
            elif isinstance(v, (Closure, FuncRef)) or v is None:
                raise Unsupported(f"abstracting this loop: it reads {shape['free'][i]}, a function or nil value", pos)
            reads[shape["free"][i]] = v
            leaves += [x for _, x in flatten(v)]
        for name, tid in sorted(shape["globals"].items()):
            v = self.global_cell(name, tid, pos).v
            reads[name] = v
            leaves += [x for _, x in flatten(v)]
        sorts = [x.sort() for x in leaves]

        def uf(tag, out_sort):
            k = (key, tag, tuple(str(x) for x in sorts), str(out_sort))
            if k not in self.ufs:
                self.ufs[k] = z3.Function(f"{key}.{tag}", *sorts, out_sort) if sorts else z3.Const(f"{key}.{tag}", out_sort)
            f = self.ufs[k]
            return f(*leaves) if sorts else f

        writes = {}
        for i in sorted(shape["writes"]):
            name = shape["free"][i]
            cell = fr.locals[i]
            if isinstance(cell.v, (Ref, SliceV, Closure, FuncRef)) or cell.v is None:
                raise Unsupported(f"abstracting this loop: it writes {name}, a pointer, slice or function value", pos)
            new = self._rebuild(cell.v, lambda path, leaf: uf(f"{name}{path}", leaf.sort()))
            writes[name] = new
            cell.v = self.merge(self.g, new, cell.v, pos)
        self.abstractions.append({"key": key, "pos": pos, "g": self.g, "reads": reads, "writes": writes})
        self.fail(uf("fails", z3.BoolSort()), "abstract", f"the loop {key} ends in an error or does not finish", pos)

    def _rebuild(self, v, leaf_fn, path=""):
        if isinstance(v, tuple):
            return tuple(self._rebuild(x, leaf_fn, f"{path}[{k}]") for k, x in enumerate(v))
        if isinstance(v, dict):
            return {k: self._rebuild(x, leaf_fn, f"{path}.{k}") for k, x in v.items()}
        return leaf_fn(path, v)

    def _range_slice(self, s, fr, label, pos):
        """range over a slice whose bounds may be symbolic. The slice is evaluated once; its
        length is at most its backing array's (len <= cap <= n), so n iterations, or the loop's
        stated bound, cover it: iteration k runs on the paths where k < len, and the paths still
        looping after a stated bound smaller than n are recorded as incomplete (never dropped).
        Elements are read from the backing array at each iteration, as Go does."""
        d, o = self.dom, self.o
        sl = self.eval(s["x"], fr)
        kt = self.p.t(s["key"]["t"]) if s["key"] else None
        if sl is None:  # a nil slice: no iterations
            return
        w = sl.bits
        length = o.sub(sl.hi, sl.lo, w)
        ordinal = self.p.loop_ordinals(fr.fname).get(id(s))
        bound = self.bounds(fr.fname, ordinal)
        bound = sl.n if bound is None else min(int(bound), sl.n)
        if self.broken == "loop_one_short":
            bound = max(0, bound - 1)
        et = self.p.t(s["xt"]).elem
        lp = Loop(label, True)
        fr.breakables.append(lp)
        exits = d.bool(False)
        try:
            for k in range(bound):
                if d.is_false(self.g):
                    break
                more = d.norm(o.ult(o.add(sl.lo, o.const(k, w), w), sl.hi, w))  # k < hi - lo, as lo <= hi <= n
                exits = d.bor(exits, d.band(self.g, d.bnot(more)))
                self.g = d.band(self.g, more)
                if d.is_false(self.g):
                    break
                lp.cont = None
                j = o.add(sl.lo, o.const(k, w), w) if self.broken != "slice_range_from_zero" else o.const(k, w)
                jc = d.as_int(j)
                step = ("i", jc if jc < sl.n else 0) if jc is not None else ("I", d.norm(j), w)
                for which in ("key", "value"):
                    tgt = s[which]
                    if tgt is None:
                        continue
                    v = o.const(k, kt.bits) if which == "key" else self.load(sl.ref.step(step), pos)
                    if which == "value" and et is None:
                        raise Unsupported("range over a slice of unknown element type", pos)
                    if s["define"]:
                        fr.locals[tgt["id"]] = Cell(v)
                    else:
                        self.store(self.lvalue(tgt, fr), v, pos)
                self.exec(s["body"], fr)
                if lp.cont is not None:
                    self.g = d.bor(self.g, lp.cont)
            if not d.is_false(self.g):
                more = o.ult(o.const(bound, w), length, w)
                still = d.band(self.g, more)
                if not d.is_false(still):
                    self.incomplete.append((still, pos, bound))
                exits = d.bor(exits, d.band(self.g, d.bnot(more)))
        finally:
            fr.breakables.pop()
        self.g = exits if lp.brk is None else d.bor(exits, lp.brk)

    def _s_switch(self, s, fr):
        d = self.dom
        label = self._take_label()
        if s["init"]:
            self.exec(s["init"], fr)
        tag = self.eval(s["tag"], fr) if s["tag"] else None
        tt = self.p.t(s["tag"]["t"]) if s["tag"] else None
        g0 = self.g
        matched = d.bool(False)
        entries = []
        default_i = None
        for i, cc in enumerate(s["cases"]):
            if cc["list"] is None:
                default_i = i
                entries.append(None)
                continue
            m = d.bool(False)
            for e in cc["list"]:
                self.g = d.band(g0, d.bnot(matched))
                v = self.eval(e, fr)
                ci = self.compare("==", tag, v, tt, cc["pos"]) if tag is not None else v
                m = d.bor(m, d.band(d.bnot(matched), ci))
                matched = d.bor(matched, ci)
            entries.append(m)
        if default_i is not None:
            entries[default_i] = d.bnot(matched)
        lp = Loop(label, False)
        fr.breakables.append(lp)
        out = d.bool(False)
        carry = d.bool(False)
        try:
            for i, cc in enumerate(s["cases"]):
                self.g = d.bor(d.band(g0, entries[i]), carry)
                for st in cc["body"]:
                    self.exec(st, fr)
                if cc["fallthrough"]:
                    carry = self.g
                else:
                    out = d.bor(out, self.g)
                    carry = d.bool(False)
        finally:
            fr.breakables.pop()
        if default_i is None:
            out = d.bor(out, d.band(g0, d.bnot(matched)))
        self.g = out if lp.brk is None else d.bor(out, lp.brk)

    # --- lvalues and expressions ------------------------------------------------------------

    def lvalue(self, e: dict, fr: Frame) -> Ref:
        k = e["k"]
        pos = e.get("pos", "?")
        if k == "local":
            c = fr.locals.get(e["id"])
            if c is None:
                raise Unsupported(f"variable {e['name']} used before its declaration was translated", pos)
            return Ref(c)
        if k == "global":
            return Ref(self.global_cell(e["name"], e["t"], pos))
        if k == "field":
            xt = self.p.t(e["x"]["t"])
            base = self.eval(e["x"], fr) if xt.kind == "pointer" else self.lvalue(e["x"], fr)
            if base is None:
                self.fail(self.dom.bool(True), "panic", "nil pointer dereference", pos)
                raise Unsupported("field of a nil pointer", pos)
            for f in e["path"]:
                base = base.step(("f", f))
            return base
        if k == "index":
            xt = self.p.t(e["x"]["t"])
            it = self.p.t(e["i"]["t"])
            if xt.kind == "slice":
                sl = self.eval(e["x"], fr)
                return self._slice_elem_ref(sl, self.eval(e["i"], fr), it, pos)
            if xt.kind == "pointer":
                base, n = self.eval(e["x"], fr), xt.elem.length
            elif xt.kind == "array":
                base, n = self.lvalue(e["x"], fr), xt.length
            else:
                raise Unsupported(f"index of {xt.kind}", pos)
            idx = self.eval(e["i"], fr)
            return base.step(self.index_step(idx, it, n, pos))
        if k == "deref":
            p = self.eval(e["x"], fr)
            if p is None:
                raise Unsupported("dereference of nil", pos)
            return p
        raise Unsupported(f"assignment to {k}", pos)

    def _slice_elem_ref(self, sl: SliceV, idx, it: GoType, pos):
        o = self.o
        if sl is None:
            self.fail(self.dom.bool(True), "panic", "index out of range", pos)
            raise Unsupported("index of a nil slice", pos)
        w = sl.bits
        i = self.convert_int(idx, it, w, False)
        if it.signed:
            self.fail(o.slt(idx, o.const(0, it.bits), it.bits), "panic", "index out of range", pos)
        ln = o.sub(sl.hi, sl.lo, w)
        self.fail(self.dom.bnot(o.ult(i, ln, w)), "panic", "index out of range", pos)
        j = o.add(sl.lo, i, w)
        k = self.dom.as_int(j)
        step = ("i", k if k is not None and k < sl.n else 0) if k is not None else ("I", self.dom.norm(j), w)
        return sl.ref.step(step)

    def global_cell(self, name: str, tid: int, pos: str) -> Cell:
        if name in self.globals:
            return self.globals[name]
        g = self.p.globals.get(name)
        t = self.p.t(tid)
        if name in self.global_inputs:
            c = Cell(self.global_inputs[name])
        elif g is not None and not g.get("written") and g.get("init") is not None:
            c = Cell(self.from_json(g["init"], t, pos))
        else:
            raise Unsupported(f"package variable {name}, written at run time (give it as an input)", pos)
        self.globals[name] = c
        return c

    def from_json(self, v, t: GoType, pos):
        if t.kind == "int":
            return self.o.const(int(v), t.bits)
        if t.kind == "bool":
            return self.dom.bool(v)
        if t.kind == "array":
            return tuple(self.from_json(x, t.elem, pos) for x in v)
        if t.kind == "struct":
            return {n: self.from_json(v[n], ft, pos) for n, ft, _ in t.fields}
        raise Unsupported(f"initializer of {t.kind}", pos)

    def eval(self, e: dict, fr: Frame):
        m = getattr(self, "_e_" + e["k"], None)
        if m is None:
            raise Unsupported(e.get("what", f"expression {e['k']}"), e.get("pos", "?"))
        return m(e, fr)

    def _e_unsupported(self, e, fr):
        raise Unsupported(e["what"], e["pos"])

    def _e_const(self, e, fr):
        t = self.p.t(e["t"])
        v = e["v"]
        if t.kind == "int":
            n = int(v)
            if t.name == "untyped int":  # a constant shift count: past 2^64-1 it shifts out all the same
                n = min(n, (1 << 64) - 1)
            return self.o.const(n, t.bits)
        if t.kind == "bool":
            return self.dom.bool(v)
        if t.kind == "string":
            return v
        raise Unsupported(f"constant of type {t.what or t.kind}", e["pos"])

    def _e_local(self, e, fr):
        c = fr.locals.get(e["id"])
        if c is None:
            raise Unsupported(f"variable {e['name']} used before its declaration was translated", e["pos"])
        return c.v

    def _e_global(self, e, fr):
        return self.global_cell(e["name"], e["t"], e["pos"]).v

    def _e_func(self, e, fr):
        return FuncRef(e["name"])

    def _e_nil(self, e, fr):
        return None

    def _e_funclit(self, e, fr):
        return Closure(e, fr)

    def _e_composite(self, e, fr):
        t = self.p.t(e["t"])
        if "fields" in e:
            v = self.zero(t, e["pos"])
            for f in e["fields"] or []:
                v[f["name"]] = self.eval(f["v"], fr)
            return v
        elts = [self.eval(x, fr) for x in e["elts"] or []]
        if len(elts) < t.length:
            elts += [self.zero(t.elem, e["pos"])] * (t.length - len(elts))
        return tuple(elts)

    def _e_addr(self, e, fr):
        x = e["x"]
        if x["k"] == "composite":
            return Ref(Cell(self.eval(x, fr)))
        return self.lvalue(x, fr)

    def _e_deref(self, e, fr):
        p = self.eval(e["x"], fr)
        if p is None:
            self.fail(self.dom.bool(True), "panic", "nil pointer dereference", e["pos"])
            return self.zero(self.p.t(e["t"]), e["pos"])
        return self.load(p, e["pos"])

    def _e_field(self, e, fr):
        xt = self.p.t(e["x"]["t"])
        v = self.eval(e["x"], fr)
        if xt.kind == "pointer":
            if v is None:
                self.fail(self.dom.bool(True), "panic", "nil pointer dereference", e["pos"])
                return self.zero(self.p.t(e["t"]), e["pos"])
            r = v
            for f in e["path"]:
                r = r.step(("f", f))
            return self.load(r, e["pos"])
        for f in e["path"]:
            v = v[f]
        return v

    def _e_index(self, e, fr):
        xt = self.p.t(e["x"]["t"])
        it = self.p.t(e["i"]["t"])
        pos = e["pos"]
        if xt.kind == "array":
            arr = self.eval(e["x"], fr)
            idx = self.eval(e["i"], fr)
            step = self.index_step(idx, it, xt.length, pos)
            return self._select(arr, step, pos)
        if xt.kind == "pointer" and xt.elem.kind == "array":
            ref = self.eval(e["x"], fr)
            idx = self.eval(e["i"], fr)
            return self.load(ref.step(self.index_step(idx, it, xt.elem.length, pos)), pos)
        if xt.kind == "slice":
            sl = self.eval(e["x"], fr)
            return self.load(self._slice_elem_ref(sl, self.eval(e["i"], fr), it, pos), pos)
        raise Unsupported(f"index of {xt.kind}", pos)

    def _e_slice(self, e, fr):
        xt = self.p.t(e["x"]["t"])
        pos = e["pos"]
        o, d = self.o, self.dom
        w = self.int_bits
        if xt.kind == "slice":
            base = self.eval(e["x"], fr)
            ref, n, off, cap = base.ref, base.n, base.lo, o.sub(o.const(base.n, w), base.lo, w)
            length = o.sub(base.hi, base.lo, w)
        else:
            if xt.kind == "pointer":
                ref, n = self.eval(e["x"], fr), xt.elem.length
            elif xt.kind == "array":
                ref, n = self.lvalue(e["x"], fr), xt.length
            else:
                raise Unsupported(f"slice of {xt.kind}", pos)
            off, cap, length = o.const(0, w), o.const(n, w), o.const(n, w)
        lo = self.convert_int(self.eval(e["lo"], fr), self.p.t(e["lo"]["t"]), w, False) if e["lo"] else o.const(0, w)
        hi = self.convert_int(self.eval(e["hi"], fr), self.p.t(e["hi"]["t"]), w, False) if e["hi"] else length
        ok = d.band(o.ule(lo, hi, w), o.ule(hi, cap, w))
        self.fail(d.bnot(ok), "panic", "slice bounds out of range", pos)
        return SliceV(ref, n, d.norm(o.add(off, lo, w)), d.norm(o.add(off, hi, w)), w)

    def _e_unary(self, e, fr):
        op = e["op"]
        t = self.p.t(e["t"])
        x = self.eval(e["x"], fr)
        if op == "!":
            return self.dom.bnot(x)
        if op == "-":
            return self.o.sub(self.o.const(0, t.bits), x, t.bits)
        if op == "^":
            return self.o.not_(x, t.bits)
        if op == "+":
            return x
        raise Unsupported(f"unary {op}", e["pos"])

    def _e_binary(self, e, fr):
        d = self.dom
        op = e["op"]
        if op in ("&&", "||"):
            x = self.eval(e["x"], fr)
            g0 = self.g
            go_on = x if op == "&&" else d.bnot(x)
            self.g = d.band(g0, go_on)
            if d.is_false(self.g):
                self.g = g0
                return x
            y = self.eval(e["y"], fr)
            self.g = d.bor(d.band(g0, d.bnot(go_on)), self.g)
            return d.band(x, y) if op == "&&" else d.bor(x, y)
        x = self.eval(e["x"], fr)
        y = self.eval(e["y"], fr)
        xt, yt, t = self.p.t(e["x"]["t"]), self.p.t(e["y"]["t"]), self.p.t(e["t"])
        return self.binop(op, x, y, xt, yt, t, e["pos"])

    def compare(self, op, x, y, t: GoType, pos):
        d, o = self.dom, self.o
        if op in ("==", "!="):
            r = self.equal(x, y, t, pos)
            return r if op == "==" else d.bnot(r)
        if t.kind != "int":
            raise Unsupported(f"ordering of {t.kind}", pos)
        w = t.bits
        lt, le = (o.slt, o.sle) if t.signed else (o.ult, o.ule)
        return {"<": lambda: lt(x, y, w), "<=": lambda: le(x, y, w), ">": lambda: lt(y, x, w),
                ">=": lambda: le(y, x, w)}[op]()

    def equal(self, x, y, t: GoType, pos):
        d = self.dom
        if t.kind == "int":
            return self.o.eq(x, y, t.bits)
        if t.kind == "bool":
            return d.beq(x, y)
        if t.kind == "struct":
            r = d.bool(True)
            for n, ft, _ in t.fields:
                r = d.band(r, self.equal(x[n], y[n], ft, pos))
            return r
        if t.kind == "array":
            r = d.bool(True)
            for a, b in zip(x, y):
                r = d.band(r, self.equal(a, b, t.elem, pos))
            return r
        if t.kind == "pointer":
            if x is None or y is None:
                return d.bool(x is None and y is None)
            if x.cell is y.cell and x.path == y.path:
                return d.bool(True)
            if x.cell is not y.cell:
                return d.bool(False)
        raise Unsupported(f"comparison of {t.kind} values", pos)

    def binop(self, op, x, y, xt: GoType, yt: GoType, t: GoType, pos):
        o, d = self.o, self.dom
        if op in ("==", "!=", "<", "<=", ">", ">="):
            return self.compare(op, x, y, xt, pos)
        if op in ("<<", ">>"):
            return self.shift(op, x, y, xt, yt, pos)
        if t.kind != "int":
            raise Unsupported(f"operator {op} on {t.kind}", pos)
        w = t.bits
        if op == "+":
            r = o.add(x, y, w)
            if self.broken == "wrapping_ignored" and not t.signed:
                r = d.ite(o.ult(r, x, w), o.const(-1, w), r)
            return r
        if op == "-":
            r = o.sub(x, y, w)
            if self.broken == "wrapping_ignored" and not t.signed:
                r = d.ite(o.ult(x, y, w), o.const(0, w), r)
            return r
        if op == "*":
            return o.mul(x, y, w)
        if op in ("/", "%"):
            self.fail(o.eq(y, o.const(0, w), w), "panic", "integer divide by zero", pos)
            if t.signed:
                return o.sdiv(x, y, w) if op == "/" else o.srem(x, y, w)
            return o.udiv(x, y, w) if op == "/" else o.urem(x, y, w)
        if op == "&":
            return o.and_(x, y, w)
        if op == "|":
            return o.or_(x, y, w)
        if op == "^":
            return o.xor(x, y, w)
        if op == "&^":
            return o.and_(x, o.not_(y, w), w)
        raise Unsupported(f"operator {op}", pos)

    def shift(self, op, x, s, xt: GoType, st: GoType, pos):
        """Go's shifts: a count of the width or more gives 0 (or the sign bits for a signed >>);
        a negative count (of a signed type) panics."""
        o, d = self.o, self.dom
        w, ws = xt.bits, st.bits
        if st.signed:
            self.fail(o.slt(s, o.const(0, ws), ws), "panic", "negative shift amount", pos)
        big = d.bnot(o.ult(s, o.const(w, ws), ws)) if w < (1 << ws) else d.bool(False)
        amt = self.convert_int(s, st, w, False) if ws != w else s
        if op == "<<":
            r, over = o.shl(x, amt, w), o.const(0, w)
        elif xt.signed:
            r, over = o.ashr(x, amt, w), o.ashr(x, o.const(w - 1, w), w)
        else:
            r, over = o.lshr(x, amt, w), o.const(0, w)
        if self.broken == "shift_of_width_gives_x":
            over = x
        return d.ite(big, over, r)

    def convert_int(self, v, ft: GoType, wt: int, signed_to: bool):
        o = self.o
        wf = ft.bits
        if wf == wt:
            return v
        if wf > wt:
            return o.trunc(v, wf, wt)
        return o.sext(v, wf, wt) if ft.signed else o.zext(v, wf, wt)

    def _e_conv(self, e, fr):
        t = self.p.t(e["t"])
        ft = self.p.t(e["x"]["t"])
        v = self.eval(e["x"], fr)
        if t.kind == "int" and ft.kind == "int":
            return self.convert_int(v, ft, t.bits, t.signed)
        if t.kind == ft.kind and t.kind in ("bool", "array", "struct", "pointer", "slice", "string"):
            return v
        raise Unsupported(f"conversion from {ft.name or ft.kind} to {t.name or t.kind}", e["pos"])

    def _e_method(self, e, fr):
        raise Unsupported("method value", e["pos"])

    # --- calls ----------------------------------------------------------------------------

    def _e_builtin(self, e, fr):
        name = e["name"]
        pos = e["pos"]
        o, d = self.o, self.dom
        if name in ("print", "println"):
            for a in e["args"]:
                self.eval(a, fr)
            return None
        if name == "panic":
            self.fail(d.bool(True), "panic", "panic", pos)
            return None
        if name in ("len", "cap"):
            at = self.p.t(e["args"][0]["t"])
            t = self.p.t(e["t"])
            if at.kind == "array" or (at.kind == "pointer" and at.elem.kind == "array"):
                n = at.length if at.kind == "array" else at.elem.length
                return o.const(n, t.bits)
            if at.kind == "slice":
                sl = self.eval(e["args"][0], fr)
                if sl is None:
                    return o.const(0, t.bits)
                if name == "cap":
                    return o.sub(o.const(sl.n, t.bits), sl.lo, t.bits)
                return o.sub(sl.hi, sl.lo, t.bits)
            raise Unsupported(f"{name} of {at.kind}", pos)
        if name in ("min", "max"):
            t = self.p.t(e["t"])
            if t.kind != "int":
                raise Unsupported(f"{name} of {t.kind}", pos)
            vals = [self.eval(a, fr) for a in e["args"]]
            lt = o.slt if t.signed else o.ult
            r = vals[0]
            for v in vals[1:]:
                r = d.ite(lt(v, r, t.bits), v, r) if name == "min" else d.ite(lt(r, v, t.bits), v, r)
            return r
        if name == "clear":
            at = self.p.t(e["args"][0]["t"])
            if at.kind != "slice":
                raise Unsupported(f"clear of {at.kind}", pos)
            sl = self.eval(e["args"][0], fr)
            if sl is None:
                return None
            w = sl.bits
            arr = self.load(sl.ref, pos)
            out = []
            for k in range(sl.n):
                kk = o.const(k, w)
                inside = d.band(self.g, d.band(o.ule(sl.lo, kk, w), o.ult(kk, sl.hi, w)))
                out.append(self.merge(inside, self.zero(at.elem, pos), arr[k], pos))
            sl.ref.cell.v = self._update(sl.ref.cell.v, sl.ref.path, tuple(out), d.bool(True), pos)
            return None
        raise Unsupported(f"builtin {name}", pos)

    def _e_call(self, e, fr):
        pos = e["pos"]
        if "callee" in e:
            name = e["callee"]
            if name in THROWS:
                for a in e["args"]:
                    self.eval(a, fr)
                msg = e["args"][0].get("v", name) if e["args"] else name
                self.fail(self.dom.bool(True), "throw", str(msg), pos)
                return self._zero_results(e, pos)
            if name in INTRINSICS:
                args = [self.eval(a, fr) for a in e["args"]]
                return self.intrinsic(INTRINSICS[name], args, self.p.t(e["args"][0]["t"]), self.p.t(e["t"]), pos)
            f = self.p.funcs.get(name)
            if f is None:
                raise Unsupported(f"call of {name}, which is not translated", pos)
            recv = None
            if "recv" in e:
                recv = self._receiver(e, fr)
            args = [self.eval(a, fr) for a in e["args"]]
            res = self._invoke(name, recv, args, pos)
            return self._pack(res)
        fv = self.eval(e["fun"], fr)
        args = [self.eval(a, fr) for a in e["args"]]
        if isinstance(fv, Closure):
            return self._pack(self._invoke_closure(fv, args, pos))
        if isinstance(fv, FuncRef):
            if fv.name not in self.p.funcs:
                raise Unsupported(f"call of {fv.name}, which is not translated", pos)
            return self._pack(self._invoke(fv.name, None, args, pos))
        raise Unsupported("call of a function value", pos)

    def _zero_results(self, e, pos):
        t = self.p.t(e["t"]) if e.get("t") else None
        if t is None or t.kind == "tuple":
            return None
        return self.zero(t, pos)

    @staticmethod
    def _pack(res):
        if len(res) == 1:
            return res[0]
        if not res:
            return None
        return tuple(res)

    def _receiver(self, e, fr):
        r = e["recv"]
        rt = self.p.t(r["t"])
        path = e.get("recv_path", [])
        if e["recv_ptr"]:
            ref = self.eval(r, fr) if rt.kind == "pointer" else self.lvalue(r, fr)
            for f in path:
                ref = ref.step(("f", f))
            return ref
        v = self.eval(r, fr)
        if rt.kind == "pointer":
            v = self.load(v, e["pos"])
        for f in path:
            v = v[f]
        return v

    def _invoke(self, name, recv, args, pos):
        f = self.p.funcs[name]
        self.depth += 1
        if self.depth > 40:
            raise Unsupported(f"recursion in {name}", pos)
        if name in self.watch and self.depth > 1:
            named = {}
            params = ([f["recv"]] if "recv" in f else []) + f["params"]
            for prm, a in zip(params, ([recv] if "recv" in f else []) + list(args)):
                named[prm["name"]] = self.load(a, pos) if isinstance(a, Ref) else (
                    list(self.load(a.ref, pos)) if isinstance(a, SliceV) else a)
            self.call_sites.append((self.g, self.watch[name](named), name, pos))
        fr = Frame(name)
        if "recv" in f and f["recv"]["id"] >= 0:
            fr.locals[f["recv"]["id"]] = Cell(recv)
        for prm, a in zip(f["params"], args):
            if prm["id"] >= 0:
                fr.locals[prm["id"]] = Cell(a)
        for r in f["results"]:
            c = Cell(self.zero(self.p.t(r["type"]), f["pos"]))
            fr.results.append(c)
            if r["id"] >= 0:
                fr.locals[r["id"]] = c
        res = self._run_body(f["body"], fr)
        self.depth -= 1
        return res

    def _invoke_closure(self, clo: Closure, args, pos):
        node = clo.node
        fr = Frame(clo.frame.fname, clo.frame.locals)  # shares the enclosing variables
        for prm, a in zip(node["params"], args):
            if prm["id"] >= 0:
                fr.locals[prm["id"]] = Cell(a)
        for r in node["results"]:
            c = Cell(self.zero(self.p.t(r["type"]), pos))
            fr.results.append(c)
            if r["id"] >= 0:
                fr.locals[r["id"]] = c
        return self._run_body(node["body"], fr)

    def _run_body(self, body, fr):
        d = self.dom
        g0 = self.g
        self.exec(body, fr)
        end = self.g
        self.g = end if fr.ret_g is None else d.bor(fr.ret_g, end)
        del g0
        return [c.v for c in fr.results]

    def intrinsic(self, name, args, at: GoType, rt: GoType, pos):
        """math/bits on the argument's width, by exact bit-parallel identities (no 64-way ifs):
        OnesCount by the SWAR sum, TrailingZeros(x) = OnesCount((x & -x) - 1) (64 for 0),
        LeadingZeros(x) = OnesCount(^smear(x)), Len(x) = width - LeadingZeros(x)."""
        o = self.o
        x = args[0]
        w = at.bits
        if name.endswith("64"):
            assert w == 64, name
        if name in ("TrailingZeros64", "TrailingZeros32", "TrailingZeros8", "TrailingZeros"):
            r = self._popcount(o.sub(o.and_(x, o.sub(o.const(0, w), x, w), w), o.const(1, w), w), w)
        elif name.startswith("OnesCount"):
            r = self._popcount(x, w)
        else:
            y = x
            sh = 1
            while sh < w:
                y = o.or_(y, o.lshr(y, o.const(sh, w), w), w)
                sh *= 2
            lz = self._popcount(o.not_(y, w), w)
            r = lz if name.startswith("LeadingZeros") else o.sub(o.const(w, w), lz, w)
        # r < 2^8 fits every result width.
        return self.convert_int(r, GoType("int", bits=w), rt.bits, rt.signed) if w != rt.bits else r

    def _popcount(self, x, w):
        o = self.o
        m1, m2, m4 = (int(("01" * 64)[:w], 2), int(("0011" * 32)[:w], 2), int(("00001111" * 16)[:w], 2))
        x = o.sub(x, o.and_(o.lshr(x, o.const(1, w), w), o.const(m1, w), w), w)
        x = o.add(o.and_(x, o.const(m2, w), w), o.and_(o.lshr(x, o.const(2, w), w), o.const(m2, w), w), w)
        x = o.and_(o.add(x, o.lshr(x, o.const(4, w), w), w), o.const(m4, w), w)
        sh = 8
        while sh < w:
            x = o.add(x, o.lshr(x, o.const(sh, w), w), w)
            sh *= 2
        return o.and_(x, o.const(0xFF if w > 8 else 0xF, w), w)


# --- inputs, preconditions and evaluation -----------------------------------------------------


def loop_shape(loop: dict, label: str | None, kind_of: Callable[[int], str]) -> dict:
    """What a for or range statement reads and writes, for Executor._abstract_loop.

    Returns {"free": {id: name} (variables it uses that are declared outside it), "writes": {ids of
    free variables it assigns}, "globals": {name: type id}, "unsupported": "" or why it cannot be
    abstracted (a return, a branch out of it, a closure, a call of anything but an intrinsic, a
    write through a pointer or into a package variable)}."""
    refs, defined, writes, globs = {}, set(), set(), {}
    labels = {label} if label else set()
    why: list[str] = []

    def target(l):
        """Records the local an assignment writes; anything reached through a pointer or a slice,
        or a package variable, is memory, which an abstracted loop may not write."""
        if l.get("k") == "blank":
            return
        r, through = l, False
        while r.get("k") in ("index", "field"):
            r = r["x"]
            through = through or kind_of(r["t"]) in ("pointer", "slice")
        if r.get("k") == "local" and not through:
            writes.add(r["id"])
        else:
            why.append(f"it writes memory or a package variable at {l.get('pos', '?')}")

    def walk(n):
        if isinstance(n, list):
            for x in n:
                walk(x)
            return
        if not isinstance(n, dict):
            return
        k, st = n.get("k"), n.get("s")
        if k == "local":
            refs[n["id"]] = n["name"]
        elif k == "global":
            globs[n["name"]] = n["t"]
        elif k == "funclit":
            why.append(f"a closure at {n.get('pos', '?')}")
        elif k == "call" and n.get("callee") not in INTRINSICS:
            why.append(f"a call of {n.get('callee', 'a function value')} at {n.get('pos', '?')}")
        if st == "labeled":
            labels.add(n["label"])
        elif st == "return":
            why.append(f"a return at {n.get('pos', '?')}")
        elif st == "branch":
            if n.get("tok") not in ("break", "continue", "fallthrough") or (n.get("label") and n["label"] not in labels):
                why.append(f"a {n.get('tok')} out of it at {n.get('pos', '?')}")
        elif st == "assign":
            for l, new in zip(n["lhs"], n["define"]):
                if new and l.get("k") == "local":
                    defined.add(l["id"])
                else:
                    target(l)
        elif st == "incdec":
            target(n["x"])
        elif st == "var":
            for v in n["vars"]:
                if v.get("k") == "local":
                    defined.add(v["id"])
        elif st == "range":
            for which in ("key", "value"):
                t = n.get(which)
                if t is not None:
                    if n.get("define") and t.get("k") == "local":
                        defined.add(t["id"])
                    else:
                        target(t)
        for v in n.values():
            if isinstance(v, (dict, list)):
                walk(v)

    walk(loop)
    free = {i: nm for i, nm in refs.items() if i not in defined}
    ws = {i for i in writes if i in free}
    # A local array or struct written element-wise is written whole; a pointer written through is not
    # a local write at all (caught above by the root being a deref or a pointer-typed local).
    return {"free": free, "writes": ws, "globals": globs, "unsupported": "; ".join(sorted(set(why)))}


def symbolic_value(dom: Z3Dom, t: GoType, name: str, slice_len: int | None = None):
    """A fresh symbolic value of type t, its variables named after name (b[3], sc.inUse)."""
    if t.kind == "int":
        return dom.var(name, t.bits)
    if t.kind == "bool":
        return dom.bvar(name)
    if t.kind == "array":
        return tuple(symbolic_value(dom, t.elem, f"{name}[{k}]") for k in range(t.length))
    if t.kind == "struct":
        return {n: symbolic_value(dom, ft, f"{name}.{n}") for n, ft, _ in t.fields}
    if t.kind == "pointer":
        return symbolic_value(dom, t.elem, name)
    if t.kind == "slice":
        if slice_len is None:
            raise Unsupported(f"slice parameter {name} without a stated length", "?")
        return [symbolic_value(dom, t.elem, f"{name}[{k}]") for k in range(slice_len)]
    raise Unsupported(f"parameter {name} of type {t.what or t.kind}", "?")


def concrete_value(dom, t: GoType, v):
    """A Python value (int, bool, list, dict) as a domain value of type t."""
    if t.kind == "int":
        return dom.const(int(v), t.bits)
    if t.kind == "bool":
        return dom.bool(bool(v))
    if t.kind == "array":
        return tuple(concrete_value(dom, t.elem, x) for x in v)
    if t.kind == "struct":
        return {n: concrete_value(dom, ft, v[n]) for n, ft, _ in t.fields}
    if t.kind == "pointer":
        return concrete_value(dom, t.elem, v)
    if t.kind == "slice":
        return [concrete_value(dom, t.elem, x) for x in v]
    raise Unsupported(f"value of type {t.kind}", "?")


def to_python(v):
    """A domain value (Z3 constants or Python) back to Python ints, bools, lists and dicts."""
    if isinstance(v, bool) or v is None or isinstance(v, (int, str)):
        return v
    if isinstance(v, (tuple, list)):
        return [to_python(x) for x in v]
    if isinstance(v, dict):
        return {k: to_python(x) for k, x in v.items()}
    if z3.is_expr(v):
        s = z3.simplify(v)
        if z3.is_true(s):
            return True
        if z3.is_false(s):
            return False
        if z3.is_bv_value(s):
            return s.as_long()
    raise ValueError(f"not a concrete value: {v}")


def flatten(v, prefix: str = "") -> list[tuple[str, Any]]:
    """(name, leaf) pairs of a value: ints and bools at named paths."""
    if isinstance(v, (tuple, list)):
        out = []
        for k, x in enumerate(v):
            out += flatten(x, f"{prefix}[{k}]")
        return out
    if isinstance(v, dict):
        out = []
        for k, x in v.items():
            out += flatten(x, f"{prefix}.{k}" if prefix else k)
        return out
    return [(prefix, v)]


def _tz_bv(x):
    """Trailing zeros of bit-vector x (its width for 0), as Executor.intrinsic computes it."""
    w = x.size()
    v = (x & -x) - 1
    r = z3.BitVecVal(0, w)
    for k in range(w):
        r = r + z3.ZeroExt(w - 1, z3.Extract(k, k, v))
    return r


class Pre:
    """Preconditions: Python-syntax expressions over parameter names, platform constants and
    globals, with Go's operators (+ - * // % << >> & | ^ ~, comparisons, and/or/not) on the
    parameters' widths (a narrower operand is zero-extended), all unsigned. Functions: pow2(x),
    implies(a, b), popcount(x). Evaluated to a Z3 Bool.
    """

    def __init__(self, env: dict[str, Any], consts: dict[str, int]):
        self.env, self.consts = env, consts
        self.side: list = []  # definitions of the fresh values interior() introduces

    def eval(self, text: str):
        tree = pyast.parse(text, mode="eval").body
        v = self._e(tree, text)
        if not z3.is_bool(v):
            raise ValueError(f"precondition {text!r} is not a condition")
        return v

    def _num(self, v, like):
        if isinstance(v, int):
            return z3.BitVecVal(v % (1 << like.size()), like.size())
        return v

    def _pair(self, a, b):
        if isinstance(a, int) and isinstance(b, int):
            return z3.BitVecVal(a, 64), z3.BitVecVal(b, 64)
        if isinstance(a, int):
            a = self._num(a, b)
        if isinstance(b, int):
            b = self._num(b, a)
        if a.size() != b.size():
            w = max(a.size(), b.size())
            a = z3.ZeroExt(w - a.size(), a) if a.size() < w else a
            b = z3.ZeroExt(w - b.size(), b) if b.size() < w else b
        return a, b

    def _e(self, n, text):
        if isinstance(n, pyast.Constant):
            if isinstance(n.value, bool):
                return z3.BoolVal(n.value)
            return int(n.value)
        if isinstance(n, pyast.Name):
            if n.id in self.env:
                return self.env[n.id]
            if n.id in self.consts:
                return int(self.consts[n.id])
            raise ValueError(f"precondition {text!r}: unknown name {n.id}")
        if isinstance(n, pyast.Subscript):
            v = self._e(n.value, text)
            k = self._e(n.slice, text)
            return v[k] if isinstance(v, (tuple, list)) else v[str(k)]
        if isinstance(n, pyast.Attribute):
            return self._e(n.value, text)[n.attr]
        if isinstance(n, pyast.BoolOp):
            vals = [self._e(v, text) for v in n.values]
            return z3.And(*vals) if isinstance(n.op, pyast.And) else z3.Or(*vals)
        if isinstance(n, pyast.UnaryOp):
            v = self._e(n.operand, text)
            if isinstance(n.op, pyast.Not):
                return z3.Not(v)
            if isinstance(n.op, pyast.Invert):
                return ~v
            if isinstance(n.op, pyast.USub):
                return -v
        if isinstance(n, pyast.BinOp):
            a, b = self._e(n.left, text), self._e(n.right, text)
            if isinstance(a, int) and isinstance(b, int):
                import operator as opm
                f = {pyast.Add: opm.add, pyast.Sub: opm.sub, pyast.Mult: opm.mul, pyast.FloorDiv: opm.floordiv,
                     pyast.Mod: opm.mod, pyast.LShift: opm.lshift, pyast.RShift: opm.rshift,
                     pyast.BitAnd: opm.and_, pyast.BitOr: opm.or_, pyast.BitXor: opm.xor}[type(n.op)]
                return f(a, b)
            a, b = self._pair(a, b)
            ops = {pyast.Add: lambda: a + b, pyast.Sub: lambda: a - b, pyast.Mult: lambda: a * b,
                   pyast.FloorDiv: lambda: z3.UDiv(a, b), pyast.Mod: lambda: z3.URem(a, b),
                   pyast.LShift: lambda: a << b, pyast.RShift: lambda: z3.LShR(a, b),
                   pyast.BitAnd: lambda: a & b, pyast.BitOr: lambda: a | b, pyast.BitXor: lambda: a ^ b}
            return ops[type(n.op)]()
        if isinstance(n, pyast.Compare):
            out = []
            left = self._e(n.left, text)
            for op, right_n in zip(n.ops, n.comparators):
                right = self._e(right_n, text)
                if z3.is_bool(left) and z3.is_bool(right) and isinstance(op, (pyast.Eq, pyast.NotEq)):
                    out.append(left == right if isinstance(op, pyast.Eq) else left != right)
                    left = right
                    continue
                a, b = self._pair(left, right)
                out.append({pyast.Lt: z3.ULT, pyast.LtE: z3.ULE, pyast.Gt: z3.UGT, pyast.GtE: z3.UGE,
                            pyast.Eq: lambda x, y: x == y, pyast.NotEq: lambda x, y: x != y}[type(op)](a, b))
                left = right
            return z3.And(*out) if len(out) > 1 else out[0]
        if isinstance(n, pyast.Call) and isinstance(n.func, pyast.Name):
            args = [self._e(a, text) for a in n.args]
            if n.func.id == "pow2":
                x = args[0]
                return z3.And(x != 0, x & (x - 1) == 0)
            if n.func.id == "implies":
                return z3.Implies(args[0], args[1])
            if n.func.id == "wf_sum":
                return self.wf_sum(*args)
            if n.func.id == "max":
                r = args[0]
                for a in args[1:]:
                    r, a = self._pair(r, a)
                    r = z3.If(z3.ULT(r, a), a, r)
                return r
            if n.func.id == "interior":
                return self.interior(args[0])
            if n.func.id == "interior_max":
                r = z3.BitVecVal(0, 64)
                for w in args[0]:
                    i = self.interior(w)
                    r = z3.If(z3.ULT(r, i), i, r)
                return r
        raise ValueError(f"precondition {text!r}: unsupported syntax {pyast.dump(n)[:60]}")

    def interior(self, x):
        """The longest run of zeros of word x strictly between its lowest and highest set bit (0
        for a word with fewer than two set bits): a fresh value I with its exact definition added
        to self.side. With y = x shifted down past its trailing zeros, filling each zero of y from
        the set bits up to r above it (y | y>>1 | ... | y>>r) leaves no zero below y's top bit
        exactly when every interior run is at most r; I is the least such r."""
        w = x.size()
        y = z3.LShR(x, _tz_bv(x) & (w - 1))

        def filled(r):
            f = y
            for k in range(1, w):
                f = f | z3.If(z3.ULE(k, r), z3.LShR(y, k), z3.BitVecVal(0, w))
            return f & (f + 1) == 0

        i = z3.FreshConst(z3.BitVecSort(w), "interior")
        self.side.append(z3.And(filled(i), z3.Or(i == 0, z3.Not(filled(i - 1)))))
        return i

    def wf_sum(self, code, n):
        """code is packPallocSum of a well-formed summary (start, max, end) of an n-page range:
        start, end <= max <= n; all three are n exactly when the range is free; otherwise start
        and end are separated by an allocated page (start + end < n). The summaries reachable
        from summarize and mergeSummaries (thm_merge's WF)."""
        L, M = int(self.consts["logMaxPackedValue"]), int(self.consts["maxPackedValue"])
        w = code.size()
        if isinstance(n, int):
            n = z3.BitVecVal(n, w)
        n = z3.ZeroExt(w - n.size(), n) if n.size() < w else z3.Extract(w - 1, 0, n)
        st, mx, en = code & (M - 1), z3.LShR(code, L) & (M - 1), z3.LShR(code, 2 * L) & (M - 1)
        normal = z3.And(z3.LShR(code, 3 * L) == 0, z3.ULE(st, mx), z3.ULE(en, mx), z3.ULE(mx, n),
                        (st == n) == (mx == n), (en == n) == (mx == n),
                        z3.Implies(z3.ULT(mx, n), z3.ULT(st + en, n)))
        return z3.Or(z3.And(code == z3.BitVecVal(1 << 63, w), n == M), normal)


# --- checks: one function, two translations (or a translation and a model encoding) ----------


@dataclasses.dataclass
class Spec:
    """One function's entry of proofs/tv_functions.toml, resolved for a platform."""

    name: str
    pre: list  # (expr, why)
    loops: dict  # ordinal -> bound
    slices: dict
    globals: list  # (name, pre, why)
    raw: dict
    split: tuple | None = None  # (parameter, lo, hi, why): check_equivalent_split's cases
    # Every function's stated loop bounds (callees are inlined with their own), set by load.
    all_loops: dict = dataclasses.field(default_factory=dict)

    def bounds(self, fname: str, ordinal: int | None):
        if fname == self.name:
            return self.loops.get(ordinal)
        return self.all_loops.get(fname, {}).get(ordinal)


def resolve_specs(table: dict, consts: dict) -> dict[str, "Spec"]:
    """Every entry of tv_functions.toml resolved for a platform's constants; each knows the
    others' loop bounds, for the callees it inlines."""
    defaults = table.get("defaults", {})
    specs = {n: resolve_spec(n, raw, defaults, consts) for n, raw in table["func"].items()}
    loops = {n: sp.loops for n, sp in specs.items()}
    for sp in specs.values():
        sp.all_loops = loops
    return specs


def resolve_spec(name: str, raw: dict, defaults: dict, consts: dict) -> Spec:
    def num(v):
        if isinstance(v, int):
            return v
        if v == "bitmap":
            v = defaults.get("bitmap_loop_bound", "pallocChunkPages / 64")
        return int(eval(compile(pyast.Expression(pyast.parse(v, mode="eval").body), "<bound>", "eval"),
                        {"__builtins__": {}}, {k: c for k, c in consts.items() if isinstance(c, int)}))

    return Spec(
        name=name,
        pre=[(p["expr"], p["why"]) for p in raw.get("pre", [])],
        loops={i: num(b) for i, b in enumerate(raw.get("loops", []))},
        slices=dict(raw.get("slices", {})),
        globals=[(g["name"], g["pre"], g["why"]) for g in raw.get("globals", [])],
        raw=raw,
        split=_split(raw.get("split"), num),
    )


def _split(raw: dict | None, num) -> tuple | None:
    if not raw:
        return None
    lo, _, hi = raw["values"].partition("..")
    return raw["param"], num(lo), num(hi), raw["why"]


def _params(prog: Program, fname: str) -> list[dict]:
    f = prog.funcs[fname]
    return ([f["recv"]] if "recv" in f else []) + f["params"]


def _result_names(prog: Program, fname: str) -> list[str]:
    rs = prog.funcs[fname]["results"]
    return [r["name"] if r["name"] not in ("_", "") else f"r{i}" for i, r in enumerate(rs)] or []


def symbolic_inputs(prog: Program, fname: str, spec: Spec):
    """Fresh Z3 inputs for fname's parameters (and the globals it reads as inputs)."""
    dom = Z3Dom()
    args = {}
    for prm in _params(prog, fname):
        t = prog.t(prm["type"])
        args[prm["name"]] = symbolic_value(dom, t, prm["name"], spec.slices.get(prm["name"]))
    gins = {}
    for name, _, _ in spec.globals:
        g = prog.globals.get(name)
        if g is None:
            continue
        gins[name] = symbolic_value(dom, prog.t(g["type"]), name)
    return args, gins


def precondition(prog: Program, spec: Spec, args: dict, gins: dict):
    env = dict(args)
    env.update(gins)
    # Parameter names the toml uses, by position, where a Go version named them otherwise
    # (findScavengeCandidate's minimum was min before 1.22).
    for canon, actual in zip(spec.raw.get("params", []), [p["name"] for p in _params(prog, spec.name)]):
        env.setdefault(canon, args[actual])
    pre = Pre(env, prog.consts)
    conds = [pre.eval(e) for e, _ in spec.pre]
    conds += [pre.eval(p) for n, p, _ in spec.globals if n in gins]
    return z3.And(*conds) if conds else z3.BoolVal(True)


def outputs(prog: Program, fname: str, out: Outcome) -> dict:
    """Named outputs of a call: results by name, then the final value behind each pointer."""
    names = _result_names(prog, fname)
    d = {n: v for n, v in zip(names, out.results)}
    ptrs = {p["name"] for p in _params(prog, fname) if prog.t(p["type"]).kind == "pointer"}
    for k, v in out.effects.items():
        if k in ptrs:
            d["*" + k] = v
    return d


def _leaves_equal(a, b):
    fa, fb = flatten(a), flatten(b)
    if [n for n, _ in fa] != [n for n, _ in fb]:
        return None
    conds = []
    for (_, x), (_, y) in zip(fa, fb):
        if isinstance(x, str) or isinstance(y, str) or x is None or y is None:
            if x != y:
                return None
            continue
        if z3.is_bool(x) != z3.is_bool(y):
            return None
        if not z3.is_bool(x) and x.size() != y.size():
            w = max(x.size(), y.size())
            x = z3.ZeroExt(w - x.size(), x) if x.size() < w else x
            y = z3.ZeroExt(w - y.size(), y) if y.size() < w else y
        conds.append(x == y)
    return z3.And(*conds) if conds else z3.BoolVal(True)


def _model_value(m, v):
    if isinstance(v, (tuple, list)):
        return [_model_value(m, x) for x in v]
    if isinstance(v, dict):
        return {k: _model_value(m, x) for k, x in v.items()}
    r = m.eval(v, model_completion=True)
    if z3.is_true(r):
        return True
    if z3.is_false(r):
        return False
    return r.as_long()


def run_concrete(prog: Program, fname: str, spec: Spec, args: dict, global_inputs: dict | None = None,
                 broken: str | None = None, dom=None) -> dict:
    """Runs the translation of fname on Python inputs (PyDom, or the given domain on constants).
    Returns {"outcome": "ok" | "throw" | "panic" | "incomplete", "outputs": {...}, "message", "pos"}."""
    dom = dom or PyDom()
    pargs = {}
    for prm in _params(prog, fname):
        pargs[prm["name"]] = concrete_value(dom, prog.t(prm["type"]), args[prm["name"]])
    gins = {}
    for name, v in (global_inputs or {}).items():
        g = prog.globals.get(name)
        if g is not None:
            gins[name] = concrete_value(dom, prog.t(g["type"]), v)
    ex = Executor(prog, dom, bounds=spec.bounds, global_inputs=gins, broken=broken)
    out = ex.call(fname, pargs)
    if not isinstance(dom, PyDom):  # constants folded by Z3: keep only what may be true
        out.incomplete = [x for x in out.incomplete if not z3.is_false(z3.simplify(x[0]))]
        out.errors = [x for x in out.errors if not z3.is_false(z3.simplify(x[0]))]
    if out.incomplete:
        _, pos, bound = out.incomplete[0]
        return {"outcome": "incomplete", "outputs": {}, "message": f"loop not finished within {bound} iterations",
                "pos": pos}
    if out.errors:
        _, kind, msg, pos = out.errors[0]
        return {"outcome": kind, "outputs": {}, "message": msg, "pos": pos}
    return {"outcome": "ok", "outputs": to_python(outputs(prog, fname, out)), "message": "", "pos": ""}


def _error_pos(out: Outcome, m) -> str:
    for cond, kind, msg, pos in out.errors:
        if z3.is_true(m.eval(cond, model_completion=True)):
            return f"{kind} {msg!r} at {pos}"
    return ""


def check_equivalent(prog_a: Program, prog_b: Program, fname: str, spec_a: Spec, spec_b: Spec | None = None,
                     timeout_s: float = 30.0, broken_b: str | None = None, pin: dict | None = None,
                     fixed: dict | None = None) -> dict:
    """Proves original(x) == patched(x) for every x meeting fname's precondition, error outcomes
    (throw / panic) included, or finds an x where they differ. pin fixes run-time variables
    (physPageSize) to given values; fixed fixes integer parameters to Python values (one case of
    a split: the executor then folds what depends on them).

    Returns {"verdict": "proved" | "counterexample" | "unknown" | "unsupported", "reason",
    "input": {param: value}, "globals": {...}}; a counterexample's outputs are computed by
    run_concrete afterwards (tv.py), so the printed values come from the concrete semantics."""
    spec_b = spec_b or spec_a
    try:
        args, gins = symbolic_inputs(prog_a, fname, spec_a)
        for k, v in (fixed or {}).items():
            args[k] = concrete_value(Z3Dom(), prog_a.t(next(p["type"] for p in _params(prog_a, fname) if p["name"] == k)), v)
        pre = precondition(prog_a, spec_a, args, gins)
        for k, v in (pin or {}).items():  # run-time variables fixed to a helper's values
            if k in gins:
                pre = z3.And(pre, gins[k] == z3.BitVecVal(v, gins[k].size()))
        oa = Executor(prog_a, Z3Dom(), bounds=spec_a.bounds, global_inputs=gins).call(fname, args)
        ob = Executor(prog_b, Z3Dom(), bounds=spec_b.bounds, global_inputs=gins, broken=broken_b).call(fname, args)
    except Unsupported as e:
        return {"verdict": "unsupported", "reason": str(e)}
    eq = _leaves_equal(outputs(prog_a, fname, oa), outputs(prog_b, fname, ob))
    if eq is None:
        return {"verdict": "unknown", "reason": "the two versions have different signatures"}
    inc = z3.Or(oa.any_incomplete(), ob.any_incomplete())
    same_err = z3.And(oa.error_kind("throw") == ob.error_kind("throw"), oa.error_kind("panic") == ob.error_kind("panic"))
    claim = z3.And(z3.Not(inc), same_err, z3.Implies(z3.Not(oa.any_error()), eq))
    res, m = _solve(pre, claim, timeout_s, ((oa, "original: "), (ob, "patched: ")), args, gins)
    if res is not None:
        return res
    return {"verdict": "counterexample", "reason": "", "input": _model_value(m, args), "globals": _model_value(m, gins),
            "error_a": _error_pos(oa, m), "error_b": _error_pos(ob, m)}


def check_equivalent_abstract(prog_a: Program, prog_b: Program, fname: str, spec_a: Spec, spec_b: Spec,
                              abstract_a: dict, abstract_b: dict, hints: dict | None = None,
                              timeout_s: float = 30.0) -> dict:
    """check_equivalent with the loops abstract_a / abstract_b name ((fname, ordinal) -> key, the
    same key for the same loop in both versions) run as the same uninterpreted functions on both
    sides (Executor._abstract_loop). The caller guarantees each is the same code in both versions.

    proved: equal whatever those loops compute (so for what they really compute). A model of the
    abstraction is only a candidate: it is run through both real translations (run_concrete) and
    is a counterexample only if they differ there. If not, hints (key -> {variable: expression
    over the loop's inputs}, the loop's specification as tv_functions.toml states it, unproved)
    steer a second search, whose candidate is checked the same way; no hint is ever assumed in a
    proof. Otherwise the verdict is unknown, saying so."""
    ufs: dict = {}
    try:
        args, gins = symbolic_inputs(prog_a, fname, spec_a)
        pre = precondition(prog_a, spec_a, args, gins)
        ea = Executor(prog_a, Z3Dom(), bounds=spec_a.bounds, global_inputs=gins, abstract=abstract_a, ufs=ufs)
        eb = Executor(prog_b, Z3Dom(), bounds=spec_b.bounds, global_inputs=gins, abstract=abstract_b, ufs=ufs)
        oa, ob = ea.call(fname, args), eb.call(fname, args)
    except Unsupported as e:
        return {"verdict": "unsupported", "reason": str(e)}
    eq = _leaves_equal(outputs(prog_a, fname, oa), outputs(prog_b, fname, ob))
    if eq is None:
        return {"verdict": "unknown", "reason": "the two versions have different signatures"}
    inc = z3.Or(oa.any_incomplete(), ob.any_incomplete())
    same_err = z3.And(*[oa.error_kind(k) == ob.error_kind(k) for k in ("throw", "panic", "abstract")])
    claim = z3.And(z3.Not(inc), same_err, z3.Implies(z3.Not(oa.any_error()), eq))
    keys = sorted({k for k in abstract_a.values()})
    what = ", ".join(keys)
    res, m = _solve(pre, claim, timeout_s, ((oa, "original: "), (ob, "patched: ")), args, gins)
    if res is not None:
        if res["verdict"] == "proved":
            res["reason"] = f"with {what} abstracted: the same code, so the same function of its inputs on both sides"
        return res

    def real(m) -> dict | None:
        inp, gi = _model_value(m, args), _model_value(m, gins)
        ra = run_concrete(prog_a, fname, spec_a, inp, gi)
        rb = run_concrete(prog_b, fname, spec_b, inp, gi)
        if "incomplete" in (ra["outcome"], rb["outcome"]):
            return None
        if (ra["outcome"], ra["outputs"]) != (rb["outcome"], rb["outputs"]):
            return {"verdict": "counterexample", "reason": "", "input": inp, "globals": gi}
        return None

    found = real(m)
    if found:
        found["found_by"] = "abstraction"
        return found
    if hints:
        side, steer = [], []
        for ex in (ea, eb):
            for app in ex.abstractions:
                h = hints.get(app["key"])
                if not h:
                    continue
                pe = Pre(dict(app["reads"]), prog_a.consts)
                for var, text in h.items():
                    want = pe._e(pyast.parse(text, mode="eval").body, text)
                    got = app["writes"][var]
                    want = z3.Extract(got.size() - 1, 0, want) if want.size() > got.size() else (
                        z3.ZeroExt(got.size() - want.size(), want) if want.size() < got.size() else want)
                    steer.append(got == want)
                side += pe.side
        for ex, o in ((ea, oa), (eb, ob)):
            steer.append(z3.Not(o.error_kind("abstract")))
        sv = z3.Solver()
        sv.set("timeout", max(1, int(timeout_s * 1000)))
        sv.add(pre, z3.Not(claim), *side, *steer)
        if sv.check() == z3.sat:
            found = real(sv.model())
            if found:
                found["found_by"] = f"a search steered by the stated specification of {what}"
                return found
    return {"verdict": "unknown", "reason": f"with {what} abstracted, the versions differ only through what "
            f"{'it computes' if len(keys) == 1 else 'they compute'}, and no input found that way is a real difference "
            "(the loop's specification is not proved at full width)"}


def check_equivalent_split(prog_a: Program, prog_b: Program, fname: str, spec_a: Spec, spec_b: Spec | None = None,
                           timeout_s: float = 30.0, broken_b: str | None = None, pin: dict | None = None) -> dict:
    """check_equivalent by cases: spec_a.split names an integer parameter and the range lo..hi of
    values its precondition allows (tv_functions.toml `split`). First proves the cases cover the
    precondition (no input meets it with the parameter outside lo..hi), then checks each value with
    the parameter concrete, so that the loops whose control depends on it fold (findBitRange64's
    shifts by n-1, k). timeout_s is the budget of the whole split. The first case with a
    counterexample ends it; a case the solver cannot decide makes the verdict unknown, naming it."""
    import time as _time

    name, lo, hi, _why = spec_a.split
    try:
        args, gins = symbolic_inputs(prog_a, fname, spec_a)
        pre = precondition(prog_a, spec_a, args, gins)
    except Unsupported as e:
        return {"verdict": "unsupported", "reason": str(e)}
    x = args[name]
    s = z3.Solver()
    s.set("timeout", max(1, int(timeout_s * 1000)))
    s.add(pre, z3.Or(z3.ULT(x, lo), z3.UGT(x, hi)))
    r = s.check()
    if r != z3.unsat:
        return {"verdict": "unknown", "reason": f"the split of {name} over {lo}..{hi} does not cover the precondition"
                + (f" ({name} = {s.model().eval(x)} meets it)" if r == z3.sat else "")}
    t0 = _time.perf_counter()
    for v in range(lo, hi + 1):
        left = timeout_s - (_time.perf_counter() - t0)
        if left <= 0:
            return {"verdict": "unknown", "reason": f"the split of {name} over {lo}..{hi} ran out of its "
                    f"{timeout_s:.0f} s budget at {name} = {v}"}
        res = check_equivalent(prog_a, prog_b, fname, spec_a, spec_b, timeout_s=left, broken_b=broken_b, pin=pin,
                               fixed={name: v})
        if res["verdict"] == "proved":
            continue
        if res.get("input") is not None:
            res["input"][name] = v
        if res["verdict"] == "unknown":
            res["reason"] = f"case {name} = {v}: {res['reason']}"
        return res
    return {"verdict": "proved", "reason": f"by cases {name} = {lo}..{hi} ({_why})"}


def _solve(pre, goal, timeout_s: float, runs, args, gins):
    """Looks for an input meeting pre where goal fails. Returns (result, None) when there is none
    ("proved"), the solver gave up, or the input found leaves a loop of one of runs ((outcome,
    label) pairs) past its bound ("unknown": never a silent proof); else (None, the model)."""
    s = z3.Solver()
    s.set("timeout", max(1, int(timeout_s * 1000)))
    s.add(pre, z3.Not(goal))
    r = s.check()
    if r == z3.unsat:
        return {"verdict": "proved", "reason": ""}, None
    if r == z3.unknown:
        return {"verdict": "unknown", "reason": f"solver: {s.reason_unknown()} (timeout {timeout_s:.0f} s)"}, None
    m = s.model()
    for o, label in runs:
        for cond, pos, bound in o.incomplete:
            if z3.is_true(m.eval(cond, model_completion=True)):
                return {"verdict": "unknown", "reason": f"{label}loop at {pos} may run past its bound of {bound} "
                        f"iterations (state a larger bound in proofs/tv_functions.toml)",
                        "input": _model_value(m, args), "globals": _model_value(m, gins)}, None
    return None, m


def check_claim(prog: Program, fname: str, spec: Spec, claim: Callable, timeout_s: float = 30.0,
                broken: str | None = None, fixed: dict | None = None) -> dict:
    """Proves claim(args, outputs, outcome) for every input meeting fname's precondition; the
    translation must also finish every loop and raise no error. fixed pins parameters to
    Python values (a level, a slice length). Same result shape as check_equivalent."""
    try:
        args, gins = symbolic_inputs(prog, fname, spec)
        pre = precondition(prog, spec, args, gins)
        for k, v in (fixed or {}).items():
            args[k] = concrete_value(Z3Dom(), prog.t(next(p["type"] for p in _params(prog, fname) if p["name"] == k)), v)
        out = Executor(prog, Z3Dom(), bounds=spec.bounds, global_inputs=gins, broken=broken).call(fname, args)
        body = claim(args, outputs(prog, fname, out))
    except Unsupported as e:
        return {"verdict": "unsupported", "reason": str(e)}
    goal = z3.And(z3.Not(out.any_incomplete()), z3.Not(out.any_error()), body)
    res, m = _solve(pre, goal, timeout_s, ((out, ""),), args, gins)
    if res is not None:
        return res
    return {"verdict": "counterexample", "reason": _error_pos(out, m), "input": _model_value(m, args),
            "globals": _model_value(m, gins)}


def holds(prog: Program, spec: Spec, args: dict, global_inputs: dict | None = None) -> bool:
    """Whether concrete arguments (Python values) meet spec's precondition."""
    dom = Z3Dom()
    zargs = {p["name"]: concrete_value(dom, prog.t(p["type"]), args[p["name"]]) for p in _params(prog, spec.name)}
    zg = {}
    for name, v in (global_inputs or {}).items():
        g = prog.globals.get(name)
        if g is not None:
            zg[name] = concrete_value(dom, prog.t(g["type"]), v)
    return z3.is_true(z3.simplify(precondition(prog, spec, zargs, zg)))


def check_call_sites(prog: Program, fname: str, spec: Spec, specs: dict, callees: list[str],
                     timeout_s: float = 30.0) -> dict:
    """Proves that every call fname makes (at any depth) to one of callees meets that callee's
    precondition, for every input meeting fname's. With each callee proved equivalent under its
    precondition and fname's own body unchanged, fname is then equivalent too (Alive2's
    refinement is compositional the same way)."""
    try:
        args, gins = symbolic_inputs(prog, fname, spec)
        pre = precondition(prog, spec, args, gins)

        def pre_of(c):
            return lambda named: precondition(prog, specs[c], named, {k: v for k, v in gins.items()})

        ex = Executor(prog, Z3Dom(), bounds=spec.bounds, global_inputs=gins, watch={c: pre_of(c) for c in callees})
        ex.call(fname, args)
    except Unsupported as e:
        return {"verdict": "unsupported", "reason": str(e)}
    except (KeyError, ValueError) as e:
        return {"verdict": "unknown", "reason": f"a callee's precondition does not apply at its call site ({e})"}
    if not ex.call_sites:
        return {"verdict": "proved", "reason": "no call reaches them"}
    goal = z3.And(*[z3.Implies(g, c) for g, c, _, _ in ex.call_sites])
    s = z3.Solver()
    s.set("timeout", max(1, int(timeout_s * 1000)))
    s.add(pre, z3.Not(goal))
    r = s.check()
    if r == z3.unsat:
        return {"verdict": "proved", "reason": ""}
    if r == z3.unknown:
        return {"verdict": "unknown", "reason": f"solver: {s.reason_unknown()} (call-site preconditions)"}
    m = s.model()
    bad = [f"{n} at {p}" for g, c, n, p in ex.call_sites
           if z3.is_true(m.eval(z3.And(g, z3.Not(c)), model_completion=True))]
    return {"verdict": "counterexample", "reason": f"a call outside the callee's precondition: {', '.join(bad)}",
            "input": _model_value(m, args)}


# --- the Go functions as encodings: the proof suite's theorems on the runtime's own code ------


class GoImpl:
    """The translated runtime functions with the call shapes of proofs/smt_encode.py, so a
    theorem stated once over an implementation is discharged on the Go code too. Each method
    runs the translation symbolically; `ok` (where returned) says every loop finished and no
    error outcome was reached. Arguments and results are resized between the encodings' widths
    (64 bits for counts and codes) and Go's (uint is 32 bits on 32-bit platforms)."""

    def __init__(self, prog: Program, specs: dict):
        self.prog, self.specs = prog, specs
        self.oks: list = []

    def _call(self, fname: str, args: dict) -> dict:
        sp = self.specs[fname]
        params = _params(self.prog, fname)
        fixed = {}
        for p in params:
            t = self.prog.t(p["type"])
            v = args[p["name"]]
            fixed[p["name"]] = self._fit(v, t)
        ex = Executor(self.prog, Z3Dom(), bounds=sp.bounds)
        out = ex.call(fname, fixed)
        self.oks.append(z3.And(z3.Not(out.any_incomplete()), z3.Not(out.any_error())))
        return outputs(self.prog, fname, out)

    def ok(self):
        return z3.And(*self.oks) if self.oks else z3.BoolVal(True)

    @staticmethod
    def _resize(x, w):
        if isinstance(x, int):
            return z3.BitVecVal(x % (1 << w), w)
        if x.size() == w:
            return x
        return z3.ZeroExt(w - x.size(), x) if x.size() < w else z3.Extract(w - 1, 0, x)

    def _fit(self, v, t: GoType):
        if t.kind == "int":
            return self._resize(v, t.bits)
        if t.kind in ("array", "slice"):
            return [self._fit(x, t.elem) for x in v] if t.kind == "slice" else tuple(self._fit(x, t.elem) for x in v)
        if t.kind == "struct":
            if not isinstance(v, dict):  # a one-field struct (offAddr) given as its field
                (n, ft, _), = t.fields
                return {n: self._fit(v, ft)}
            return {n: self._fit(v[n], ft) for n, ft, _ in t.fields}
        if t.kind == "pointer":
            return self._fit(v, t.elem)
        return v

    def _r(self, fname, args, w=64):
        o = self._call(fname, args)
        vals = [v["a"] if isinstance(v, dict) and "a" in v else v for k, v in o.items() if not k.startswith("*")]
        vals = [v if z3.is_bool(v) else self._resize(v, w) for v in vals]
        return vals[0] if len(vals) == 1 else tuple(vals)

    # mpagealloc.go
    def pack_palloc_sum(self, p, start, most, end):
        return self._r("packPallocSum", {"start": start, "max": most, "end": end})

    def palloc_sum_unpack(self, p, s):
        return self._r("pallocSum.unpack", {"p": s})

    def palloc_sum_start(self, p, s):
        return self._r("pallocSum.start", {"p": s})

    def palloc_sum_max(self, p, s):
        return self._r("pallocSum.max", {"p": s})

    def palloc_sum_end(self, p, s):
        return self._r("pallocSum.end", {"p": s})

    def merge_summaries(self, p, sums, log_max_pages_per_sum: int):
        return self._r("mergeSummaries", {"sums": list(sums), "logMaxPagesPerSum": log_max_pages_per_sum})

    def find_bit_range64(self, c, n):
        before = len(self.oks)
        r = self._r("findBitRange64", {"c": c, "n": n})
        return r, z3.And(*self.oks[before:])

    def chunk_index(self, p, a):
        return self._r("chunkIndex", {"p": a}, p.ptr_bits)

    def chunk_base(self, p, ci):
        return self._r("chunkBase", {"ci": ci}, p.ptr_bits)

    def chunk_page_index(self, p, a):
        return self._r("chunkPageIndex", {"p": a}, p.ptr_bits)

    def chunk_idx_l1(self, p, ci):
        return self._r("chunkIdx.l1", {"i": ci}, p.ptr_bits)

    def chunk_idx_l2(self, p, ci):
        return self._r("chunkIdx.l2", {"i": ci}, p.ptr_bits)

    def off_addr_to_level_index(self, p, level, a):
        return self._r("offAddrToLevelIndex", {"level": level, "addr": a}, p.ptr_bits)

    def level_index_to_off_addr(self, p, level, idx):
        return self._r("levelIndexToOffAddr", {"level": level, "idx": idx}, p.ptr_bits)

    def addrs_to_summary_range(self, p, level, base, limit):
        return self._r("addrsToSummaryRange", {"level": level, "base": base, "limit": limit}, p.ptr_bits)

    def block_align_summary_range(self, p, level, lo, hi):
        return self._r("blockAlignSummaryRange", {"level": level, "lo": lo, "hi": hi}, p.ptr_bits)

    # mranges.go
    def off_addr_less_than(self, p, a, b):
        return self._r("offAddr.lessThan", {"l1": a, "l2": b})

    def off_addr_less_equal(self, p, a, b):
        return self._r("offAddr.lessEqual", {"l1": a, "l2": b})

    def off_addr_add(self, p, a, nbytes):
        return self._r("offAddr.add", {"l": a, "bytes": nbytes}, p.ptr_bits)

    def off_addr_diff(self, p, a, b):
        return self._r("offAddr.diff", {"l1": a, "l2": b}, p.ptr_bits)

    # mgcscavenge.go
    def fill_aligned(self, x, m):
        return self._r("fillAligned", {"x": x, "m": m})

    # mpallocbits.go
    def summarize(self, words):
        before = len(self.oks)
        code = self._r("pallocBits.summarize", {"b": tuple(words)})
        s, m, e = self.palloc_sum_unpack(None, code)
        return s, m, e, z3.And(*self.oks[before:])
