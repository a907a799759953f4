"""Fixtures of the operator unit tests (the helpers are in tests/support/operator_plans.py)."""

from __future__ import annotations

import pytest

from tests.support.operator_plans import FakeKube


@pytest.fixture
def fake_kube() -> FakeKube:
    return FakeKube()
