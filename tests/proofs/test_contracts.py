"""CrossHair checks every contract on the model's pure functions (one parametrised test).

Grades are reported honestly: a contract passes when CrossHair confirms it or cannot refute
it within the short per-condition timeout; a broken variant passes only when refuted. CrossHair
runs in one child Python on the interpreted model (contracts.run_checks), shared by the tests.
"""

from __future__ import annotations

import pytest

from palloc import model
from palloc.proofs import contracts
from palloc.spec.errors import PallocError


@pytest.fixture(scope="module")
def grades() -> dict[str, dict]:
    return {row["check"]: row for row in contracts.run_checks(contracts.CHECKS, per_condition_timeout=1.5)}


@pytest.mark.parametrize("name", contracts.CHECKS)
def test_contract_holds_or_variant_is_refuted(grades, name):
    row = grades[name]
    assert row["grade"] in contracts.expected_grade(name), f"{name}: {row['grade']}: {row['detail']}"


def test_crosshair_exhausts_the_contracts_it_can_on_the_interpreted_model(grades):
    # On a compiled model these came back "could not refute": CrossHair cannot follow C.
    for name in ("check_chunk_index_chunk_base_round_trip", "check_pack_all_free_is_special"):
        assert grades[name]["grade"] == contracts.CONFIRMED, grades[name]


@pytest.mark.skipif(not model.compiled_modules(), reason="the model is interpreted here: no compiled child to refuse")
def test_a_crosshair_child_on_the_compiled_model_is_refused(monkeypatch):
    # The broken variant of the switch: a child that never sees PALLOC_INTERPRETED runs compiled.
    monkeypatch.setattr(model, "INTERPRETED_ENV", "PALLOC_NOT_THE_SWITCH")
    with pytest.raises(PallocError, match="not interpreted"):
        list(contracts.run_checks(contracts.CHECKS[:1], per_condition_timeout=0.5))
