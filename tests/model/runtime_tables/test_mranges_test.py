"""mranges_test.go, run on the model through the export mirror."""

from __future__ import annotations

import go_tables
import pytest
from goenv import table_cases

from palloc.model import export as ex
from palloc.spec import platform


def validate_addr_ranges(a, *want):
    """validateAddrRanges: same ranges, sorted, coalesced, non-overlapping, consistent total."""
    ranges = a.ranges()
    assert len(ranges) == len(want), f"want {want}, got {ranges}"
    got_total = want_total = 0
    for i, r in enumerate(ranges):
        got_total += r.size()
        want_total += want[i].size()
        assert r.base() < r.limit(), "empty range found"
        assert r.equals(want[i]), f"range {i}: got {r}, want {want[i]}"
        if i:
            assert ranges[i - 1].base() < r.base(), f"ranges {i - 1} and {i} are out of sorted order"
            assert ranges[i - 1].limit() != r.base(), f"ranges {i - 1} and {i} should have coalesced"
            assert not ranges[i - 1].limit() > r.base(), f"ranges {i - 1} and {i} overlap"
    assert want_total == got_total
    assert a.total_bytes() == got_total


@pytest.mark.parametrize("name", ["linux/amd64", "linux/386"])
def test_addr_ranges_add(name):
    p = platform(name)
    mk = lambda b, l: ex.make_addr_range(p, b, l)  # noqa: E731
    a = ex.new_addr_ranges(p)
    a.add(mk(512, 1024))
    validate_addr_ranges(a, mk(512, 1024))
    a.add(mk(1024, 2048))  # coalesce up
    validate_addr_ranges(a, mk(512, 2048))
    a.add(mk(4096, 8192))  # new independent range
    validate_addr_ranges(a, mk(512, 2048), mk(4096, 8192))
    a.add(mk(3776, 4096))  # coalesce down
    validate_addr_ranges(a, mk(512, 2048), mk(3776, 8192))
    a.add(mk(2048, 3776))  # coalesce up and down
    validate_addr_ranges(a, mk(512, 8192))
    expected = [mk(512, 8192)]
    for i in range(64):
        d = mk(8192 + (i + 1) * 2048, 8192 + (i + 1) * 2048 + 10)
        a.add(d)
        expected.append(d)
        validate_addr_ranges(a, *expected)
    bottom = []
    for i in range(63):
        d = mk(8 + i * 8, 8 + i * 8 + 4)
        a.add(d)
        bottom.append(d)
        validate_addr_ranges(a, *(bottom + expected))


@pytest.mark.parametrize("env,name,test", table_cases(go_tables.TestAddrRangesFindSucc))
def test_addr_ranges_find_succ(env, name, test):
    a = ex.make_addr_ranges(env.p, *test["ranges"])
    assert a.find_succ(test["base"]) == test["expect"]


def test_immutable_addr_ranges_throw_on_add():
    p = platform("linux/amd64")
    a = ex.make_addr_ranges(p, ex.make_addr_range(p, 0, 10))
    from palloc.spec.errors import GoThrow

    with pytest.raises(GoThrow, match="immutable"):
        a.add(ex.make_addr_range(p, 20, 30))
