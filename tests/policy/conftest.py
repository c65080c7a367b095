"""Fixtures for the policy tests (tokens come from the real OAuth `token_headers`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.policy.engine import PolicyEngine
from gateway.policy.loader import LoadedPolicy, load_policy
from tests.conftest import ROOT

TWENTE = ROOT / "policies" / "twente.yaml"
DEFAULT_SCOPES = "signals:write signals:read notifications:read directory:read"


@pytest.fixture(scope="session")
def twente() -> LoadedPolicy:
    return load_policy(TWENTE)


@pytest.fixture(scope="session")
def engine(twente: LoadedPolicy) -> PolicyEngine:
    return PolicyEngine(twente)


@pytest.fixture
def policy_text() -> str:
    return Path(TWENTE).read_text(encoding="utf-8")
