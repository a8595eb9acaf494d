"""Helpers for the runtime's own tables: one Env per modelled platform, one pytest case per Go subtest."""

from __future__ import annotations

import pytest
from goenv import IDS, PLATFORMS, Env

ENVS = [Env(p, phys, huge) for p, phys, huge in PLATFORMS]


def table_cases(table_fn, key="name"):
    """Returns pytest params (env, name, case) for every platform and every case of a Go table.

    Dict tables are keyed by case name; list tables carry the name in the `key` field.
    """
    out = []
    for env, pid in zip(ENVS, IDS):
        tests = table_fn(env.names)
        items = tests.items() if isinstance(tests, dict) else ((t[key], t) for t in tests)
        for name, case in items:
            out.append(pytest.param(env, name, case, id=f"{pid}/{name}"))
    return out


@pytest.fixture(params=ENVS, ids=IDS)
def env(request):
    return request.param
