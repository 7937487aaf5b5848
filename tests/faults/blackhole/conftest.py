"""The blackholed-link suite: in-process services on a database and NATS of its own."""

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cephalo_agent_gateway.testing.fixtures import (  # noqa: F401 - pytest finds them by name
    gateway_settings,
    real_agents,
    release_url,
    space,
)
from cephalo_common.db.migrations import upgrade

FAULTS = str(Path(__file__).resolve().parent.parent)
if FAULTS not in sys.path:
    sys.path.insert(0, FAULTS)


@pytest.fixture(scope="session")
def nats_url(new_nats: Callable[[str], str]) -> str:
    return new_nats("blackhole-faults")


@pytest.fixture(scope="session")
def database(new_database: Callable[[str], str]) -> str:
    """Migrated outside the event loop (Alembic runs its own)."""
    url = new_database("blackhole-faults")
    for package in ("cephalo_release", "cephalo_agent_gateway", "cephalo_orchestrator"):
        upgrade(package, url)
    return url
