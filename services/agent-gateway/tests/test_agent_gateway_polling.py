"""The polling listener over real mutual TLS: who may connect, and what `connected` says."""

from __future__ import annotations

import asyncio
import ssl
import uuid

import pytest
from sqlalchemy import update
from websockets.exceptions import ConnectionClosed, InvalidMessage, InvalidStatus

from cephalo_agent_gateway.db.models import Machine
from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_agent_gateway.testing.harness import RunningGateway, Space, eventually
from cephalo_common.db.session import unit_of_work


async def test_an_unregistered_certificate_is_refused(
    gateway: RunningGateway, agent: FakeAgent
) -> None:
    """TLS itself refuses it: the trust store holds registered certificates only."""
    with pytest.raises((ssl.SSLError, ConnectionError, ConnectionClosed, InvalidMessage)):
        websocket = await agent.open(gateway.endpoint, gateway.server_pem)
        await websocket.recv()


async def test_a_registered_agent_connects_and_shows_connected(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    machine = await gateway.register(agent, space)
    assert machine["connected"] is False
    gateway.start_agent(agent)
    await gateway.wait_connected(space, machine["id"])
    listed = (await gateway.client.get(f"/api/v1/spaces/{space.id}/machines")).json()
    assert [m["connected"] for m in listed] == [True]
    assert (await gateway.machine(space, machine["id"]))["last_seen_at"] is not None
    await agent.stop()
    await gateway.wait_connected(space, machine["id"], expected=False)


async def test_a_deleted_machine_is_disconnected_and_refused_afterwards(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    machine = await gateway.register(agent, space)
    gateway.start_agent(agent, reconnect=False)
    await gateway.wait_connected(space, machine["id"])
    deleted = await gateway.client.delete(f"/api/v1/spaces/{space.id}/machines/{machine['id']}")
    assert deleted.status_code == 204
    await eventually(lambda: agent.close_codes)
    assert agent.close_codes == [1008]
    # OpenSSL still trusts the certificate; the thumbprint lookup after the handshake does not.
    websocket = await agent.open(gateway.endpoint, gateway.server_pem)
    with pytest.raises(ConnectionClosed) as closed:
        await websocket.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "unknown certificate")


async def test_a_disabled_machine_is_refused(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    machine = await gateway.register(agent, space)
    async with unit_of_work(gateway.app.state.runtime.sessionmaker) as session:
        await session.execute(
            update(Machine).where(Machine.id == machine["id"]).values(is_disabled=True)
        )
    websocket = await agent.open(gateway.endpoint, gateway.server_pem)
    with pytest.raises(ConnectionClosed) as closed:
        await websocket.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1008, "machine is disabled")


async def test_a_newer_connection_replaces_the_older_one(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    machine = await gateway.register(agent, space)
    first = await agent.open(gateway.endpoint, gateway.server_pem)
    await gateway.wait_connected(space, machine["id"])
    second = await agent.open(gateway.endpoint, gateway.server_pem)
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(first.recv(), 10)
    assert first.close_code == 1000
    assert gateway.gateway.connections.is_connected(uuid.UUID(machine["id"]))
    await second.close()
    await gateway.wait_connected(space, machine["id"], expected=False)


async def test_only_the_polling_path_is_served(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    await gateway.register(agent, space)
    with pytest.raises(InvalidStatus) as refused:
        await agent.open(gateway.endpoint.replace("/poll", "/elsewhere"), gateway.server_pem)
    assert refused.value.response.status_code == 404
