"""The real agent (`cephalo_agent`) against the real gateway: register, poll, run, deregister.

The gateway is served by uvicorn on a free port because the agent registers with plain
(synchronous) HTTP, exactly as `cephalo-agent register` does.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from cephalo_agent.config import AgentPaths, load_config
from cephalo_agent.polling import PollingClient, PollingSettings
from cephalo_agent.registration import deregister, register
from cephalo_agent.scripts import ScriptService
from cephalo_agent.service import AgentService
from cephalo_agent_gateway.app import create_app
from cephalo_agent_gateway.runtime import Gateway, gateway_of
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.harness import (
    Orchestrator,
    Space,
    StepEvents,
    eventually,
    unique,
)
from cephalo_common.agent_protocol import ScriptSyntax
from cephalo_common.embedded import free_port
from cephalo_common.testing import serving

FAST = PollingSettings(initial_backoff_seconds=0.05, max_backoff_seconds=0.2)


@asynccontextmanager
async def served(settings: AgentGatewaySettings) -> AsyncIterator[tuple[str, Gateway]]:
    app = create_app(settings)
    async with serving(app, port=settings.port, lifespan="on") as url:
        gateway = gateway_of(app.state.runtime)
        await asyncio.wait_for(gateway.listener.serving.wait(), 20)
        yield url, gateway


async def test_the_real_agent_registers_runs_a_script_and_deregisters(
    gateway_settings: Callable[..., AgentGatewaySettings],
    space: Space,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    paths = AgentPaths(tmp_path / "real-agent")
    name = unique("real")
    async with served(gateway_settings(port=free_port())) as (url, gateway):
        registered = await asyncio.to_thread(
            register,
            paths,
            server_url=url,
            space=str(space.id),
            name=name,
            environments=["Production"],
            roles=["web"],
        )
        machine_id = registered.config.machine_id
        assert machine_id is not None
        assert registered.server_thumbprint == gateway.identity.thumbprint
        scripts = ScriptService.for_paths(paths)
        client = PollingClient.from_config(paths, load_config(paths), AgentService(scripts), FAST)
        polling = asyncio.create_task(client.run_forever())
        try:
            await asyncio.wait_for(client.connected.wait(), 20)
            envelope = await orchestrator.dispatch(
                space,
                machine_id,
                script_body='echo "one $CEPHALO_VAR_GREETING"; echo two; exit 3',
                syntax=ScriptSyntax.BASH,
                variables={"Greeting": "hi"},
            )
            ticket = envelope.data["ticket"]
            finished = await events.wait_finished(ticket)
            assert (finished.exit_code, finished.error) == (3, None)
            assert events.lines(ticket) == ["one hi", "two"]
            assert events.sequences(ticket) == [1, 2]
            assert not (paths.work / ticket).exists()  # complete_script cleaned up

            assert await asyncio.to_thread(deregister, paths) is True
            await eventually(lambda: not client.connected.is_set())
            async with httpx.AsyncClient(base_url=url) as http:
                gone = await http.get(f"/api/v1/spaces/{space.id}/machines/{machine_id}")
            assert gone.status_code == 404
        finally:
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            await client.aclose()
            await scripts.aclose()
