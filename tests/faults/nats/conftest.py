"""The NATS fault suite: a NATS server this suite can stop, wipe and start again.

`nats_url` and `database` are overridden, so the in-process release-service, agent-gateway and
deploy-orchestrator all talk to the server the test controls.
"""

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cephalo_agent_gateway.testing.fixtures import (  # noqa: F401 - pytest finds them by name
    gateway_settings,
    real_agents,
    release_url,
    space,
)
from cephalo_common.db.migrations import upgrade
from cephalo_common.embedded import EmbeddedNats, free_port

FAULTS = str(Path(__file__).resolve().parent.parent)
if FAULTS not in sys.path:
    sys.path.insert(0, FAULTS)


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path_factory.mktemp("nats-faults") / "store", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def nats_url(nats_server: EmbeddedNats) -> str:
    return nats_server.url


@pytest.fixture(scope="session")
def database(new_database: Callable[[str], str]) -> str:
    """Migrated outside the event loop (Alembic runs its own)."""
    url = new_database("nats-faults")
    for package in ("cephalo_release", "cephalo_agent_gateway", "cephalo_orchestrator"):
        upgrade(package, url)
    return url
