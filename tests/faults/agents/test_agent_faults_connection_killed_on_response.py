"""The connection dies on the response of each RPC in turn: the script still runs once.

After Tentacle's `ClientScriptExecutionCanRecoverFromNetworkIssues`: a TCP proxy sits
between agent-gateway and a real agent; a hook in the agent's service severs every
connection through the proxy right after the agent has done the work of method M and
before its response is written. The gateway never sees that response, reconnects (polling:
the agent dials again; listening: the gateway dials again) and carries on with the same
ticket and log cursor. Proved by the agent's own count of executions, the log (complete, in
order, no duplicates) and the exit code — in both modes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.fault_proxy import FaultProxy
from cephalo_agent_gateway.testing.fixtures import ServedGateway, serve_gateway
from cephalo_agent_gateway.testing.harness import Orchestrator, Space, StepEvents, eventually
from cephalo_common.agent_protocol import RequestMessage, ResponseMessage
from cephalo_common.embedded import free_port

pytestmark = pytest.mark.faults

METHODS = ["get_capabilities", "start_script", "get_status", "complete_script"]
LINES = [f"line {n}" for n in range(1, 7)]


@pytest.fixture
async def served(
    gateway_settings: Callable[..., AgentGatewaySettings],
) -> AsyncIterator[ServedGateway]:
    """A gateway that waits only briefly on `start_script`, so that the script is still
    running when the start answers and `get_status` (held open) has its turn too."""
    async with serve_gateway(gateway_settings(start_wait_seconds=0.1)) as running_gateway:
        yield running_gateway


class ResponseKiller:
    """Wraps the agent's `handle`: severs the proxy on the first response of `method`."""

    def __init__(self, service: Any, proxy: FaultProxy, method: str) -> None:
        self.proxy = proxy
        self.method = method
        self.calls: Counter[str] = Counter()
        self.killed = 0
        self._handle = service.handle
        service.handle = self.handle

    async def handle(self, request: RequestMessage) -> ResponseMessage:
        response: ResponseMessage = await self._handle(request)
        self.calls[request.method] += 1
        if request.method == self.method and not self.killed:
            self.killed = self.proxy.sever()
        return response


async def agent_behind_proxy(
    mode: str, served: Any, space: Space, real_agents: Any
) -> tuple[Any, FaultProxy]:
    if mode == "polling":
        proxy = await FaultProxy(served.settings.polling_port).start()
        endpoint = f"wss://127.0.0.1:{proxy.port}/poll"
        agent = await real_agents(served, space, polling_endpoint=endpoint)
    else:
        agent_port = free_port()
        proxy = await FaultProxy(agent_port).start()
        agent = await real_agents(
            served,
            space,
            mode="listening",
            listening_url=f"https://127.0.0.1:{proxy.port}",
            listen_port=agent_port,
        )
    return agent, proxy


def counting_script(executions: Path) -> str:
    body = "".join(f'echo "{line}"; sleep 0.05; ' for line in LINES)
    return f"echo run >> {executions}; {body}exit 3"


@pytest.mark.parametrize("mode", ["polling", "listening"])
@pytest.mark.parametrize("method", METHODS)
async def test_script_runs_once_when_the_connection_dies_on_a_response(
    mode: str,
    method: str,
    served: Any,
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    agent, proxy = await agent_behind_proxy(mode, served, space, real_agents)
    try:
        killer = ResponseKiller(agent.agent.service, proxy, method)
        executions = tmp_path / "executions"
        envelope = await orchestrator.dispatch(
            space, agent.machine_id, script_body=counting_script(executions)
        )
        ticket = envelope.data["ticket"]
        finished = await events.wait_finished(ticket)
    finally:
        await proxy.close()

    assert killer.killed >= 1, f"no connection was severed on {method}"
    assert killer.calls[method] >= 2, f"{method} was not retried"
    assert executions.read_text() == "run\n"
    assert (finished.exit_code, finished.error) == (3, None)
    assert events.lines(ticket) == LINES
    assert events.sequences(ticket) == list(range(1, len(LINES) + 1))


@pytest.mark.parametrize("mode", ["polling", "listening"])
async def test_cancel_is_delivered_when_the_connection_dies_on_its_response(
    mode: str,
    served: Any,
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    agent, proxy = await agent_behind_proxy(mode, served, space, real_agents)
    try:
        killer = ResponseKiller(agent.agent.service, proxy, "cancel_script")
        executions = tmp_path / "executions"
        script = f"echo run >> {executions}; echo started; sleep 300"
        envelope = await orchestrator.dispatch(space, agent.machine_id, script_body=script)
        ticket = envelope.data["ticket"]
        await eventually(lambda: events.lines(ticket) == ["started"])
        async with served.client() as http:
            response = await http.post(f"/api/v1/spaces/{space.id}/script-runs/{ticket}/cancel")
            assert response.status_code == 202
        finished = await events.wait_finished(ticket)
    finally:
        await proxy.close()

    assert killer.killed >= 1
    assert killer.calls["cancel_script"] >= 2
    assert executions.read_text() == "run\n"
    assert (finished.exit_code, finished.error) == (-1, "Canceled")
    assert events.lines(ticket) == ["started", "The script was cancelled."]
