"""The solver layer of the proof suite: obligations, verdicts, and the only door to Z3.

Alive2's split, kept here: the semantics are the Python model (palloc.model); the SMT
encodings of its functions live in proofs/smt_encode.py; theorem modules (proofs/thm_*.py)
state obligations with the operators re-exported below and never import z3 themselves; the
tools (proofs/runner.py, palloc prove) only see Obligation and Result.

Every obligation is one named check with three verdicts: "proved" (the negated claim is
unsatisfiable), "counterexample" (a model of the negation, printed in the domain's terms by
the obligation's own printer), or "unknown" (solver gave up or hit the time limit). Unknown
is never a pass.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Callable

import z3

# Operators the theorem modules may use (they never import z3 directly).
And, Or, Not, If, Implies = z3.And, z3.Or, z3.Not, z3.If, z3.Implies
Int, Ints, IntVal, Bool, BoolVal = z3.Int, z3.Ints, z3.IntVal, z3.Bool, z3.BoolVal
BitVec, BitVecs, BitVecVal = z3.BitVec, z3.BitVecs, z3.BitVecVal
ULT, ULE, UGT, UGE, LShR, UDiv, URem = z3.ULT, z3.ULE, z3.UGT, z3.UGE, z3.LShR, z3.UDiv, z3.URem
ZeroExt, Extract, Concat, Distinct, Sum = z3.ZeroExt, z3.Extract, z3.Concat, z3.Distinct, z3.Sum
BV2Int, Int2BV = z3.BV2Int, z3.Int2BV
simplify = z3.simplify

PROVED, COUNTEREXAMPLE, UNKNOWN = "proved", "counterexample", "unknown"
VERDICTS = (PROVED, COUNTEREXAMPLE, UNKNOWN)


@dataclasses.dataclass
class Goal:
    """One claim to prove: hypotheses imply conclusion, for all values of the free variables.

    show(values) prints a counterexample in the domain's terms; values maps each name in
    `watch` to the model's value of that expression (a Python int or bool).
    """

    hyps: list[Any]
    concl: Any
    watch: dict[str, Any]
    show: Callable[[dict[str, Any]], str]


@dataclasses.dataclass(frozen=True)
class Obligation:
    """A named proof obligation of one theorem.

    build(platform) returns the Goal; key(platform) names the constants the goal depends on,
    so that two platforms with the same key share one solver run. expected is the verdict the
    manifest records ("counterexample" for a broken variant). variant_of names the obligation a
    broken variant mutates.
    """

    theorem: str
    name: str
    claim: str
    build: Callable[[Any], Goal]
    key: Callable[[Any], tuple] = lambda p: ()
    variant_of: str | None = None
    applies: Callable[[Any], bool] = lambda p: True
    slow: bool = False  # run only with `palloc prove --slow` (and `pytest -m slow`)

    @property
    def qualname(self) -> str:
        return f"{self.theorem}.{self.name}"

    @property
    def is_variant(self) -> bool:
        return self.variant_of is not None


@dataclasses.dataclass
class Result:
    obligation: str
    platform: str
    verdict: str
    seconds: float
    cpu_seconds: float = 0.0
    counterexample: str = ""
    reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Alike in shape to smt_go.to_python, on purpose: this reads a solver's model (with completion,
# ints, any other value as text), that simplifies a domain term and refuses what is not constant.
def _value(m: z3.ModelRef, e: Any) -> Any:
    v = m.eval(e, model_completion=True)
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    if z3.is_bv_value(v):
        return v.as_long()
    if z3.is_int_value(v):
        return v.as_long()
    return str(v)


def check(goal: Goal, timeout_s: float) -> tuple[str, str, str]:
    """Checks a goal; returns (verdict, counterexample text, reason for unknown)."""
    s = z3.Solver()
    s.set("timeout", max(1, int(timeout_s * 1000)))
    s.add(*goal.hyps)
    s.add(z3.Not(goal.concl))
    r = s.check()
    if r == z3.unsat:
        return PROVED, "", ""
    if r == z3.sat:
        m = s.model()
        values = {k: _value(m, e) for k, e in goal.watch.items()}
        try:
            text = goal.show(values)
        except Exception as e:  # a printer bug must not hide the verdict
            text = f"{values} (printer failed: {e})"
        return COUNTEREXAMPLE, text, ""
    return UNKNOWN, "", s.reason_unknown()


def run(ob: Obligation, platform: Any, timeout_s: float) -> Result:
    """Builds and checks one obligation on one platform, timing both."""
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        goal = ob.build(platform)
        verdict, cex, reason = check(goal, timeout_s)
    except z3.Z3Exception as e:
        verdict, cex, reason = UNKNOWN, "", f"z3 error: {e}"
    return Result(ob.qualname, platform.name, verdict, time.perf_counter() - t0, time.process_time() - c0, cex, reason)


def value(e: Any) -> Any:
    """Evaluates a closed term (all inputs concrete) to a Python int or bool: for tie tests."""
    v = z3.simplify(e)
    if z3.is_true(v):
        return True
    if z3.is_false(v):
        return False
    if z3.is_bv_value(v) or z3.is_int_value(v):
        return v.as_long()
    s = z3.Solver()
    x = z3.FreshConst(e.sort())
    s.add(x == e)
    if s.check() != z3.sat:
        raise ValueError(f"cannot evaluate {e}")
    return _value(s.model(), x)
