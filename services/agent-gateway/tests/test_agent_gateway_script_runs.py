"""Running steps: `step.dispatch` in, the agent runs it once, `step.log`/`step.finished` out.

Every test goes through real NATS JetStream (the dispatch is a command envelope on the
CMD_AGENT work queue; the events are read back from EVT_AGENT subjects), real Postgres and
a polling agent over real mutual TLS.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from cephalo_agent_gateway.db.models import InboxMessage, ScriptRun
from cephalo_agent_gateway.events.consumers import DISPATCH_STEP_CONSUMER
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_agent_gateway.testing.harness import (
    Orchestrator,
    RunningGateway,
    Space,
    StepEvents,
    eventually,
    gateway_running,
    unique,
)
from cephalo_common.agent_protocol import ScriptSyntax


async def script_run(gateway: RunningGateway, ticket: str) -> ScriptRun | None:
    async with gateway.app.state.runtime.sessionmaker() as session:
        run: ScriptRun | None = await session.get(ScriptRun, ticket)
        return run


async def consumed(gateway: RunningGateway, envelope_id: str) -> bool:
    async with gateway.app.state.runtime.sessionmaker() as session:
        key = {"consumer": DISPATCH_STEP_CONSUMER, "message_id": envelope_id}
        return await session.get(InboxMessage, key) is not None


async def test_a_dispatched_step_runs_on_the_agent_and_streams_its_log(
    gateway: RunningGateway,
    space: Space,
    agent: FakeAgent,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    machine = await gateway.register(agent, space)
    gateway.start_agent(agent)
    await gateway.wait_connected(space, machine["id"])
    envelope = await orchestrator.dispatch(
        space,
        machine["id"],
        script_body="echo hello; echo world",
        syntax=ScriptSyntax.SH,
        variables={"Password": "s3cret", "Greeting": "hi"},
        sensitive_variables=["Password"],
        timeout_seconds=60,
    )
    ticket = envelope.data["ticket"]
    finished = await events.wait_finished(ticket)

    assert (finished.exit_code, finished.error) == (0, None)
    assert finished.last_log_sequence == 2
    assert finished.step_run_id == envelope.data["step_run_id"]
    assert finished.machine_id == machine["id"]
    assert events.lines(ticket) == ["hello", "world"]
    assert events.sequences(ticket) == [1, 2]
    assert agent.starts[ticket] == 1
    (start,) = agent.calls_of("start_script", ticket)
    assert start.params["variables"] == {"Password": "s3cret", "Greeting": "hi"}
    assert start.params["sensitive_variables"] == ["Password"]
    assert (start.params["syntax"], start.params["timeout_seconds"]) == ("sh", 60)
    statuses = agent.calls_of("get_status", ticket)
    assert all("wait_seconds" not in call.params for call in [start, *statuses])  # old agent
    assert agent.calls[0].method == "get_capabilities"
    assert len(agent.calls_of("complete_script", ticket)) == 1
    assert agent.scripts[ticket].completed
    run = await script_run(gateway, ticket)
    assert run is not None
    assert (run.state, run.exit_code, run.last_log_sequence) == ("Complete", 0, 2)
    assert run.dispatch["variables"] == {"Password": "********", "Greeting": "hi"}


async def test_the_same_dispatch_delivered_twice_runs_once(
    gateway: RunningGateway,
    space: Space,
    agent: FakeAgent,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    machine = await gateway.register(agent, space)
    first = await orchestrator.dispatch(space, machine["id"])
    ticket = first.data["ticket"]
    copy = await orchestrator.redeliver(space, first)
    assert copy.id != first.id
    await eventually(lambda: consumed(gateway, copy.id))
    gateway.start_agent(agent)
    await events.wait_finished(ticket)
    late = await orchestrator.redeliver(space, first)
    await eventually(lambda: consumed(gateway, late.id))
    await asyncio.sleep(0.5)

    assert agent.starts[ticket] == 1
    assert len(agent.calls_of("start_script", ticket)) == 1
    assert len(events.finished_for(ticket)) == 1
    assert events.lines(ticket) == ["hello", "world"]


async def test_a_machine_that_never_connects_fails_with_the_pickup_error(
    gateway_settings: Callable[..., AgentGatewaySettings],
    space: Space,
    agent: FakeAgent,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    async with gateway_running(gateway_settings(pickup_timeout_seconds=1)) as gateway:
        name = unique("offline")
        machine = await gateway.register(agent, space, name=name)
        envelope = await orchestrator.dispatch(space, machine["id"])
        finished = await events.wait_finished(envelope.data["ticket"])
    assert finished.exit_code is None
    assert finished.error == f"Machine {name} did not connect within 1 s"
    assert events.lines(envelope.data["ticket"]) == []


async def test_a_dispatch_for_an_unknown_machine_finishes_with_an_error(
    gateway: RunningGateway, space: Space, events: StepEvents, orchestrator: Orchestrator
) -> None:
    machine_id = str(uuid.uuid4())
    envelope = await orchestrator.dispatch(space, machine_id)
    finished = await events.wait_finished(envelope.data["ticket"])
    assert finished.exit_code is None
    assert finished.error == f"Machine {machine_id} is not registered in this space"


async def test_a_dropped_connection_resumes_with_the_same_ticket_and_cursor(
    gateway: RunningGateway,
    space: Space,
    agent: FakeAgent,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    agent.lines = ["one", "two", "three"]
    agent.hold_at = 1
    machine = await gateway.register(agent, space)
    gateway.start_agent(agent)
    await gateway.wait_connected(space, machine["id"])
    ticket = (await orchestrator.dispatch(space, machine["id"])).data["ticket"]
    await eventually(lambda: events.sequences(ticket) == [1])

    await agent.drop()
    await eventually(lambda: agent.connections == 2)
    agent.progress.set()
    finished = await events.wait_finished(ticket)

    assert finished.exit_code == 0
    assert events.lines(ticket) == ["one", "two", "three"]
    assert events.sequences(ticket) == [1, 2, 3]
    assert agent.starts[ticket] == 1
    assert len(agent.calls_of("start_script", ticket)) == 1
    resumed = [call for call in agent.calls_of("get_status", ticket) if call.connection == 2]
    assert resumed
    assert resumed[0].params["last_log_sequence"] == 1


async def test_a_restarted_gateway_resumes_unfinished_runs(
    gateway_settings: Callable[..., AgentGatewaySettings],
    space: Space,
    agent: FakeAgent,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    """Same data dir (same server certificate) and port: the agent just reconnects."""
    settings = gateway_settings()
    agent.lines = ["one", "two", "three"]
    agent.hold_at = 1
    async with gateway_running(settings) as first:
        machine = await first.register(agent, space)
        first.start_agent(agent)
        await first.wait_connected(space, machine["id"])
        ticket = (await orchestrator.dispatch(space, machine["id"])).data["ticket"]
        await eventually(lambda: events.sequences(ticket) == [1])
    async with gateway_running(settings) as second:
        await second.wait_connected(space, machine["id"])
        agent.progress.set()
        finished = await events.wait_finished(ticket)
        run = await script_run(second, ticket)

    assert finished.exit_code == 0
    assert events.sequences(ticket) == [1, 2, 3]
    assert events.lines(ticket) == ["one", "two", "three"]
    assert agent.starts[ticket] == 1
    assert len(agent.calls_of("start_script", ticket)) == 1
    assert run is not None and run.state == "Complete"


async def test_an_agent_that_lost_the_ticket_is_not_asked_to_run_it_again(
    gateway: RunningGateway,
    space: Space,
    agent: FakeAgent,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    """A reinstalled agent (same certificate, empty journal) must not re-run a started script."""
    agent.hold_at = 1
    machine = await gateway.register(agent, space)
    gateway.start_agent(agent)
    await gateway.wait_connected(space, machine["id"])
    ticket = (await orchestrator.dispatch(space, machine["id"])).data["ticket"]
    await eventually(lambda: events.sequences(ticket) == [1])
    await agent.stop()

    reinstalled = FakeAgent(agent.directory)
    gateway.start_agent(reinstalled)
    try:
        finished = await events.wait_finished(ticket)
    finally:
        await reinstalled.stop()
    assert finished.exit_code is None
    assert finished.error is not None
    assert finished.error.startswith(f"Machine {machine['name']}: get_status failed")
    assert "UnknownTicket" in finished.error
    assert not reinstalled.calls_of("start_script")
