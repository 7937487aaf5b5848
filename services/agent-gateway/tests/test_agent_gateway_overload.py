"""An exhausted database pool answers 503 with Retry-After, not a 500: a busy gateway, not
a broken one (cephalo_common answers it for every service). The pool is exhausted for real: the test holds every connection it has."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.harness import Space, gateway_running
from cephalo_common.http.problems import BUSY_RETRY_AFTER_SECONDS

MAX_OVERFLOW = 10  # SQLAlchemy's default, on top of `pool_size`


async def test_an_exhausted_database_pool_answers_503_with_retry_after(
    gateway_settings: Callable[..., AgentGatewaySettings], space: Space
) -> None:
    settings = gateway_settings(
        database={
            "url": gateway_settings().database.url,
            "pool_size": 1,
            "connect_timeout_seconds": 0.5,
        }
    )
    async with gateway_running(settings) as gateway:
        engine: AsyncEngine = gateway.app.state.runtime.engine
        machines = f"/api/v1/spaces/{space.id}/machines"
        assert (await gateway.client.get(machines)).status_code == 200
        async with contextlib.AsyncExitStack() as held:
            for _ in range(1 + MAX_OVERFLOW):
                await held.enter_async_context(engine.connect())

            response = await gateway.client.get(machines)

        assert response.status_code == 503, response.text
        assert response.headers["Retry-After"] == str(BUSY_RETRY_AFTER_SECONDS)
        assert response.json()["type"].endswith("/busy")
        assert (await gateway.client.get(machines)).status_code == 200
