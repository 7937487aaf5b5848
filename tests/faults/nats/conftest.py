"""The NATS fault suite: a NATS server this suite can stop, wipe and start again.

`nats_url` and `database` are overridden, so the in-process release-service, agent-gateway and
deploy-orchestrator all talk to the server the test controls.
"""

import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cephalo_agent_gateway.testing.fixtures import (  # noqa: F401 - pytest finds them by name
    gateway_settings,
    real_agents,
    space,
)
from cephalo_common.db.migrations import upgrade
from cephalo_common.embedded import EmbeddedNats, free_port
from cephalo_common.testing import serving
from cephalo_release.app import create_app as create_release_app
from cephalo_release.settings import ReleaseSettings

WINDOW_SECONDS = 2.0

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


@pytest.fixture(scope="session")
def nats_settings(nats_url: str) -> dict[str, Any]:
    """Every service's NATS settings: the suite's server, a de-duplication window of
    WINDOW_SECONDS (all services must agree, each re-applies it when it connects)."""
    return {"url": nats_url, "duplicate_window_seconds": WINDOW_SECONDS}


@pytest.fixture(scope="session")
async def release_url(database: str, nats_settings: dict[str, Any]) -> AsyncIterator[str]:
    """agent-gateway's release_url fixture, with the suite's NATS settings."""
    settings = ReleaseSettings(database={"url": database}, nats=nats_settings, run_workers=False)
    async with serving(create_release_app(settings), lifespan="on") as url:
        yield url
