"""The gateway with a real agent listing `script-status-wait/v1`: held calls, fewer of them.

A short script costs `start_script` (answered once the script is done) and `complete_script`,
nothing in between; a longer one is followed with `get_status` calls the agent holds open
until there is news, so their number follows the output, not the clock. The agent's service
is the real one; it only notes the methods it was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from cephalo_agent.config import AgentPaths, load_config
from cephalo_agent.journal import OUTPUT_FILE
from cephalo_agent.polling import PollingClient, PollingSettings
from cephalo_agent.registration import register
from cephalo_agent.scripts import ScriptService
from cephalo_agent.service import AgentService
from cephalo_agent_gateway.app import create_app
from cephalo_agent_gateway.db.models import ScriptRun
from cephalo_agent_gateway.runtime import gateway_of
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.harness import (
    Orchestrator,
    Space,
    StepEvents,
    eventually,
    unique,
)
from cephalo_common.agent_protocol import RequestMessage, ResponseMessage
from cephalo_common.embedded import free_port
from cephalo_common.testing import serving

FAST = PollingSettings(initial_backoff_seconds=0.05, max_backoff_seconds=0.2)


class NotingService(AgentService):
    """The real service, noting (method, params) of every request it answers."""

    def __init__(self, scripts: ScriptService) -> None:
        super().__init__(scripts)
        self.requests: list[RequestMessage] = []

    async def handle(self, request: RequestMessage) -> ResponseMessage:
        self.requests.append(request)
        return await super().handle(request)

    def methods(self, ticket: str) -> list[str]:
        return [r.method for r in self.requests if r.params.get("ticket") == ticket]


@asynccontextmanager
async def agent_on_gateway(
    settings: AgentGatewaySettings, space: Space, home: Path
) -> AsyncIterator[tuple[str, NotingService, AgentGatewaySettings, object]]:
    app = create_app(settings)
    async with serving(app, port=settings.port, lifespan="on") as url:
        await asyncio.wait_for(gateway_of(app.state.runtime).listener.serving.wait(), 20)
        paths = AgentPaths(home)
        registered = await asyncio.to_thread(
            register,
            paths,
            server_url=url,
            space=str(space.id),
            name=unique("waiting"),
            environments=["Production"],
            roles=["web"],
        )
        assert registered.config.machine_id is not None
        scripts = ScriptService.for_paths(paths)
        service = NotingService(scripts)
        client = PollingClient.from_config(paths, load_config(paths), service, FAST)
        polling = asyncio.create_task(client.run_forever())
        try:
            await asyncio.wait_for(client.connected.wait(), 20)
            yield registered.config.machine_id, service, settings, app
        finally:
            polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            await client.aclose()
            await scripts.aclose()


async def run_row(app: object, ticket: str) -> ScriptRun:
    async with app.state.runtime.sessionmaker() as session:  # type: ignore[attr-defined]
        run = await session.get(ScriptRun, ticket)
    assert run is not None
    return run


@pytest.mark.timeout(180)
async def test_a_short_script_costs_a_start_and_a_complete(
    gateway_settings: Callable[..., AgentGatewaySettings],
    space: Space,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    settings = gateway_settings(port=free_port(), start_wait_seconds=10)
    async with agent_on_gateway(settings, space, tmp_path / "agent") as (machine, service, _, app):
        envelope = await orchestrator.dispatch(space, machine, script_body="echo ok; exit 4")
        ticket = envelope.data["ticket"]
        finished = await events.wait_finished(ticket)

        assert (finished.exit_code, finished.error) == (4, None)
        assert events.lines(ticket) == ["ok"]
        assert service.methods(ticket) == ["start_script", "complete_script"]
        run = await run_row(app, ticket)
        assert run.state == "Complete" and run.started_at is not None
        assert run.started_at <= run.finished_at


@pytest.mark.timeout(180)
async def test_a_longer_script_is_followed_with_held_status_calls(
    gateway_settings: Callable[..., AgentGatewaySettings],
    space: Space,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    settings = gateway_settings(
        port=free_port(), start_wait_seconds=0.2, status_wait_seconds=15, status_poll_seconds=0.05
    )
    async with agent_on_gateway(settings, space, tmp_path / "agent") as (machine, service, _, app):
        script = "echo begun; sleep 2; echo middle; sleep 2; echo end"
        envelope = await orchestrator.dispatch(space, machine, script_body=script)
        ticket = envelope.data["ticket"]
        finished = await events.wait_finished(ticket)

        assert (finished.exit_code, finished.error) == (0, None)
        assert events.lines(ticket) == ["begun", "middle", "end"]
        assert events.sequences(ticket) == [1, 2, 3]
        statuses = [r for r in service.requests if r.method == "get_status"]
        assert all(r.params.get("wait_seconds") == 15 for r in statuses)
        # Polled every 0.05 s, 4 s of script would have cost some 80 calls.
        assert 1 <= len(statuses) <= 6
        assert (await run_row(app, ticket)).state == "Complete"


@pytest.mark.timeout(180)
async def test_a_start_that_answers_complete_after_waiting_for_the_mutex_keeps_its_lines(
    gateway_settings: Callable[..., AgentGatewaySettings],
    space: Space,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    """The lines of a start answered Complete (here the mutex wait) are published before
    `step.finished`, which names the last of them."""
    settings = gateway_settings(port=free_port(), start_wait_seconds=15)
    home, go = tmp_path / "agent", tmp_path / "go"
    async with agent_on_gateway(settings, space, home) as (machine, service, _, app):
        hold = f"i=0; while [ ! -f {go} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done"
        first = (await orchestrator.dispatch(space, machine, script_body=hold)).data["ticket"]
        await eventually(lambda: "start_script" in service.methods(first))
        second = (await orchestrator.dispatch(space, machine, script_body="true")).data["ticket"]
        output = AgentPaths(home).tickets / second / OUTPUT_FILE
        await eventually(lambda: output.exists() and "Waiting for" in output.read_text())
        go.touch()
        finished = await events.wait_finished(second)

        waiting = f"Waiting for the script isolation mutex 'RunningScript', held by script {first}."
        assert service.methods(second) == ["start_script", "complete_script"]
        assert (finished.exit_code, finished.last_log_sequence) == (0, 1)
        assert (events.lines(second), events.sequences(second)) == ([waiting], [1])
        assert (await run_row(app, second)).last_log_sequence == 1
