"""Fixtures for the Kubernetes unit tests: an in-memory API server."""

from __future__ import annotations

import pytest

from swell.clusters.kubernetes import fake


@pytest.fixture
def api() -> fake.FakeApi:
    return fake.FakeApi()
