"""The orchestrator crash suite: agent-gateway's fixtures on a database and NATS of its own.

`database` and `nats_url` are overridden here, so the in-process agent-gateway and
release-service, and the orchestrator process the test kills, share one fresh stack.
"""

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.fixtures import (  # noqa: F401 - pytest finds them by name
    ServedGateway,
    gateway_settings,
    release_url,
    serve_gateway,
    space,
)
from cephalo_common.db.migrations import upgrade

BENCH = str(Path(__file__).resolve().parent.parent.parent / "bench")
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)


@pytest.fixture(scope="session")
def nats_url(new_nats: Callable[[str], str]) -> str:
    return new_nats("orchestrator-crash")


@pytest.fixture(scope="session")
def database(new_database: Callable[[str], str]) -> str:
    """Migrated outside the event loop (Alembic runs its own)."""
    url = new_database("orchestrator-crash")
    for package in ("cephalo_release", "cephalo_agent_gateway", "cephalo_orchestrator"):
        upgrade(package, url)
    return url


@pytest.fixture
async def served(
    gateway_settings: Callable[..., AgentGatewaySettings],  # noqa: F811 - the imported fixture
    database: str,
) -> AsyncIterator[ServedGateway]:
    """The gateway at a calmer status poll than its own suite's, with connections for every
    script it drives at once."""
    settings = gateway_settings(
        status_poll_seconds=0.2, database={"url": database, "pool_size": 30}
    )
    async with serve_gateway(settings) as running_gateway:
        yield running_gateway
