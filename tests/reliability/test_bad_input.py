"""Bad input (issue 12 items 7, 11-14, 16): each is exit 2 with one line saying what is wrong, before
anything expensive (a helper build, a campaign, a solver) starts.

--goroot names a folder with no toolchain, so a check that came too late would fail on the
toolchain instead, and the assertion on the message catches it.
"""

from __future__ import annotations

import json

import pytest

NO_GO = "/nonexistent-goroot"


# --- item 13: budgets that would check nothing ----------------------------------------------


@pytest.mark.parametrize("flag, value", [("--seconds", "nan"), ("--seconds", "inf"), ("--seconds", "-1"),
                                         ("--seconds", "0"), ("--seconds", "soon"), ("--steps", "0"),
                                         ("--steps", "-5"), ("--jobs", "0")])
def test_fuzz_budget_out_of_range_is_an_argument_error(palloc, flag, value):
    line = palloc("fuzz", flag, value, "--goroot", NO_GO).error_line()
    assert flag in line and value in line and "palloc fuzz --help" in line


# --- item 7: the failures folder is checked before the campaign --------------------------------


def test_fuzz_with_an_unwritable_failures_folder_stops_before_the_campaign(palloc, unwritable_dir):
    line = palloc("fuzz", "--failures", unwritable_dir / "cases", "--goroot", NO_GO).error_line()
    assert str(unwritable_dir / "cases") in line and "--failures" in line


@pytest.mark.parametrize("where", ["/proc/foo", "file"])
def test_fuzz_with_a_failures_folder_that_cannot_exist_stops_before_the_campaign(palloc, tmp_path, where):
    if where == "file":
        (tmp_path / "file").write_text("a file, not a folder")
        where = str(tmp_path / "file")
    line = palloc("fuzz", "--failures", where, "--goroot", NO_GO).error_line()
    assert where in line and "--failures" in line


def test_fuzz_failures_folder_check_leaves_nothing_behind(palloc, tmp_path):
    (tmp_path / "kept").mkdir()
    for folder in (tmp_path / "new" / "cases", tmp_path / "kept"):
        assert NO_GO in palloc("fuzz", "--failures", folder, "--goroot", NO_GO).error_line()  # after the check
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["kept"]
