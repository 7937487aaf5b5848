"""Two agent-gateway replicas: any replica runs a script on any agent, trust is shared.

Both replicas share the database, NATS and the server identity (agents pin one thumbprint);
each has its own polling port. Agents are spread over both. A call for a polling agent
connected to the other replica is routed over NATS (`cephalo.agent.req.<machine-id>`), a
run is driven by whichever replica holds its lease, and a certificate registered through
one replica is trusted by the other.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from nats.js.errors import NotFoundError
from sqlalchemy import func, update

from cephalo_agent_gateway.db.models import ScriptRun
from cephalo_agent_gateway.domain.files import FileTransferClient
from cephalo_agent_gateway.domain.scripts import RemoteCallFailed, ScriptClient
from cephalo_agent_gateway.domain.transport import ConnectionLost, MachineNotConnected
from cephalo_agent_gateway.testing.harness import Orchestrator, Space, StepEvents, eventually
from cephalo_agent_gateway.transport.file_relay import BUCKET
from cephalo_agent_gateway.transport.routing import KIND
from cephalo_common.agent_protocol import (
    ProcessState,
    RequestMessage,
    ScriptSyntax,
    StartScriptCommand,
)
from cephalo_common.db.session import unit_of_work
from cephalo_common.ids import uuid7
from cephalo_common.messaging import subjects


@pytest.fixture
async def replicas(serve_another_gateway: Any) -> AsyncIterator[tuple[Any, Any]]:
    async with (
        serve_another_gateway(replica_name="replica-a", route_peer_timeout_seconds=1.5) as a,
        serve_another_gateway(replica_name="replica-b", route_peer_timeout_seconds=1.5) as b,
    ):
        assert a.gateway.identity.thumbprint == b.gateway.identity.thumbprint
        yield a, b


def endpoint_of(replica: Any) -> str:
    return f"wss://127.0.0.1:{replica.settings.polling_port}/poll"


async def spread_agents(
    replicas: tuple[Any, Any], space: Space, real_agents: Any
) -> tuple[Any, Any]:
    """x registers through A but connects to B; y registers through B, connects to A."""
    a, b = replicas
    x = await real_agents(a, space, polling_endpoint=endpoint_of(b))
    y = await real_agents(b, space, polling_endpoint=endpoint_of(a))
    await eventually(lambda: b.gateway.connections.is_connected(uuid.UUID(x.machine_id)))
    await eventually(lambda: a.gateway.connections.is_connected(uuid.UUID(y.machine_id)))
    return x, y


async def run_script(replica: Any, machine_id: str, text: str) -> tuple[int | None, list[str]]:
    client = ScriptClient(replica.gateway.transport, uuid.UUID(machine_id))
    ticket = f"direct-{uuid7().hex}"
    command = StartScriptCommand(
        ticket=ticket, script_body=f"echo {text}; exit 5", syntax=ScriptSyntax.BASH
    )
    status = await client.start_script(command, await client.get_capabilities())
    lines = [line.text for line in status.logs]
    while status.state is not ProcessState.COMPLETE:
        await asyncio.sleep(0.05)
        status = await client.get_status(ticket, len(lines))
        lines += [line.text for line in status.logs]
    await client.complete_script(ticket, len(lines))
    return status.exit_code, lines


async def test_a_certificate_registered_through_one_replica_is_trusted_by_the_other(
    replicas: tuple[Any, Any], space: Space, real_agents: Any
) -> None:
    a, b = replicas
    x, y = await spread_agents(replicas, space, real_agents)  # both started = connected
    assert b.gateway.connections.is_connected(uuid.UUID(x.machine_id))
    assert a.gateway.connections.is_connected(uuid.UUID(y.machine_id))
    assert not a.gateway.connections.is_connected(uuid.UUID(x.machine_id))


async def test_any_replica_runs_a_script_on_any_agent(
    replicas: tuple[Any, Any], space: Space, real_agents: Any
) -> None:
    x, y = await spread_agents(replicas, space, real_agents)
    for replica in replicas:
        for agent in (x, y):
            exit_code, lines = await run_script(replica, agent.machine_id, agent.machine_id[:8])
            assert (exit_code, lines) == (5, [agent.machine_id[:8]])


async def test_dispatched_steps_run_on_agents_of_both_replicas_from_one_driver(
    replicas: tuple[Any, Any],
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    a, b = replicas
    x, y = await spread_agents(replicas, space, real_agents)
    await a.gateway.supervisor.stop()  # B drives everything: y through A, x locally
    tickets = {}
    for agent in (x, y, x, y):
        envelope = await orchestrator.dispatch(
            space, agent.machine_id, script_body=f"echo one; echo {agent.machine_id}"
        )
        tickets[envelope.data["ticket"]] = agent.machine_id
    for ticket, machine_id in tickets.items():
        finished = await events.wait_finished(ticket)
        # Two steps per target: the second may first wait for the target's isolation mutex.
        lines = [line for line in events.lines(ticket) if not line.startswith("Waiting for")]
        assert (finished.exit_code, lines) == (0, ["one", machine_id])
        async with b.client() as http:
            run = (await http.get(f"/api/v1/spaces/{space.id}/script-runs/{ticket}")).json()
        assert run["driver"] == "replica-b"


async def test_a_run_held_by_a_dead_replica_moves_when_its_lease_expires(
    replicas: tuple[Any, Any],
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
) -> None:
    a, b = replicas
    x, _ = await spread_agents(replicas, space, real_agents)
    await a.gateway.supervisor.stop()
    await b.gateway.supervisor.stop()
    envelope = await orchestrator.dispatch(space, x.machine_id, script_body="echo moved")
    ticket = envelope.data["ticket"]
    sessionmaker = a.app.state.runtime.sessionmaker

    async def recorded() -> bool:
        async with sessionmaker() as session:
            return await session.get(ScriptRun, ticket) is not None

    await eventually(recorded)
    async with unit_of_work(sessionmaker) as session:  # a replica that died holding it
        await session.execute(
            update(ScriptRun)
            .where(ScriptRun.ticket == ticket)
            .values(driver="replica-dead", lease_until=func.now() + timedelta(seconds=1))
        )
    b.gateway.supervisor._stopped = False
    await b.gateway.supervisor.scan()
    assert ticket not in b.gateway.supervisor.driving  # still leased by the dead replica
    await asyncio.sleep(1.2)
    await b.gateway.supervisor.scan()
    finished = await events.wait_finished(ticket)
    assert (finished.exit_code, events.lines(ticket)) == (0, ["moved"])
    await b.gateway.supervisor.stop()


async def test_a_silent_peer_fails_the_call_quickly_and_no_peer_means_not_connected(
    replicas: tuple[Any, Any],
) -> None:
    a, _ = replicas
    machine_id = uuid.uuid4()
    request = RequestMessage(id="1", service="CapabilitiesService", method="get_capabilities")
    with pytest.raises(MachineNotConnected):
        await a.gateway.route.invoke(machine_id, request)

    async def accept_then_die(message: Msg) -> None:
        await a.gateway.bus.publish(message.reply, b"", headers={KIND: "accepted"})

    subscription = await a.gateway.bus.subscribe(
        subjects.agent_request(str(machine_id)), accept_then_die
    )
    try:
        with pytest.raises(ConnectionLost, match="went silent"):
            await a.gateway.route.invoke(machine_id, request)
    finally:
        with contextlib.suppress(Exception):
            await subscription.unsubscribe()


async def test_deleting_through_one_replica_disconnects_the_agent_from_the_other(
    replicas: tuple[Any, Any], space: Space, real_agents: Any
) -> None:
    a, b = replicas
    x, _ = await spread_agents(replicas, space, real_agents)
    async with a.client() as http:
        response = await http.delete(f"/api/v1/spaces/{space.id}/machines/{x.machine_id}")
        assert response.status_code == 204
    await eventually(lambda: not b.gateway.connections.is_connected(uuid.UUID(x.machine_id)))


async def test_files_stream_to_and_from_an_agent_connected_to_the_other_replica(
    replicas: tuple[Any, Any], space: Space, real_agents: Any, nats_url: str, tmp_path: Path
) -> None:
    """Through the replicas' object store; nothing is left in it once the calls are over."""
    a, b = replicas
    x, y = await spread_agents(replicas, space, real_agents)
    source = tmp_path / "package.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    for caller, agent in ((a, x), (b, y)):
        machine_id = uuid.UUID(agent.machine_id)
        assert not caller.gateway.connections.is_connected(machine_id)
        client = FileTransferClient(caller.gateway.transport, machine_id)
        uploaded = await client.upload(source, "packages/app/1.0.0.bin")
        back = tmp_path / f"back-{agent.machine_id}.bin"
        downloaded = await client.download("packages/app/1.0.0.bin", back)
        empty = tmp_path / "empty.txt"
        empty.write_bytes(b"")
        await client.upload(empty, "empty.txt")
        empty_back = tmp_path / f"empty-{agent.machine_id}.txt"
        await client.download("empty.txt", empty_back)
        with pytest.raises(RemoteCallFailed, match="InvalidPath"):
            await client.upload(source, "../../etc/evil")
        missing = tmp_path / f"missing-{agent.machine_id}.bin"
        with pytest.raises(RemoteCallFailed):
            await client.download("packages/none.bin", missing)

        stored = agent.paths.files / "packages/app/1.0.0.bin"
        assert stored.read_bytes() == source.read_bytes()
        assert back.read_bytes() == source.read_bytes()
        assert uploaded.sha256 == downloaded.sha256 and downloaded.size == source.stat().st_size
        assert (agent.paths.files / "empty.txt").read_bytes() == b""
        assert empty_back.read_bytes() == b""
        assert not missing.exists()

    connection = await nats.connect(nats_url)
    try:
        store = await connection.jetstream().object_store(BUCKET)
        with pytest.raises(NotFoundError):
            await store.list(ignore_deletes=True)
    finally:
        await connection.close()
