"""CrossHair checks every contract on the model's pure functions (one parametrised test).

Grades are reported honestly: a contract passes when CrossHair confirms it or cannot refute
it within the short per-condition timeout; a broken twin passes only when refuted.
"""

from __future__ import annotations

import pytest

from palloc.proofs import contracts


@pytest.mark.parametrize("name", contracts.CHECKS)
def test_contract_holds_or_twin_is_refuted(name):
    grade, detail = contracts.run_check(name, per_condition_timeout=1.5)
    assert grade in contracts.expected_grade(name), f"{name}: {grade}: {detail}"
