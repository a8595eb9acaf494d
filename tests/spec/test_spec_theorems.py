"""The written specification's theorem list (spec/SPEC.md §7): every theorem has a verdict, and
every theorem marked FALSE has a test that exhibits its counterexample (named test_tf<n>_...)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "spec" / "SPEC.md"


def _theorems() -> list[tuple[str, str, str]]:
    text = SPEC.read_text()
    section = text[text.index("## 7. Theorems"):]
    rows = re.findall(r"^\| (T[-\w]*) \| (.*?) \| (.*) \|$", section, flags=re.M)
    return rows


def test_every_theorem_has_a_verdict():
    rows = _theorems()
    assert len(rows) >= 15
    ids = [r[0] for r in rows]
    assert len(ids) == len(set(ids)), "duplicate theorem ids"
    for tid, _, verdict in rows:
        assert verdict.startswith("holds") or verdict.startswith("**FALSE**"), tid
        assert tid.startswith("T-F") == verdict.startswith("**FALSE**"), f"{tid}: T-F ids are the FALSE ones"


def test_every_false_theorem_has_a_counterexample_test():
    tests = "\n".join(p.read_text() for p in (ROOT / "tests").rglob("test_*.py"))
    for tid, _, _ in _theorems():
        if tid.startswith("T-F"):
            n = tid[3:]
            assert re.search(rf"def test_tf{n}_", tests), f"{tid} has no test_tf{n}_... test"
