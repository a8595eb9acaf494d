"""The `env` fixture: one Env (platform and host page sizes) per modelled platform."""

from __future__ import annotations

import pytest
from goenv import ENVS, IDS


@pytest.fixture(params=ENVS, ids=IDS)
def env(request):
    return request.param
