"""The agent-gateway machines query over real HTTP, against the fake in fakes.py
(the real agent-gateway is exercised by the end-to-end suite)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from cephalo_common.embedded import free_port
from cephalo_orchestrator.clients.agent_gateway import AgentGatewayMachines, create_client
from cephalo_orchestrator.domain.targets import TargetsRefused, TargetsUnavailable

from ..fakes import FakeAgentGateway


@pytest.fixture
async def machines(fake_gateway: FakeAgentGateway) -> AsyncIterator[AgentGatewayMachines]:
    async with create_client(fake_gateway.url, 2.0) as client:
        yield AgentGatewayMachines(client)


async def test_machines_with_any_of_the_roles_are_found(
    fake_gateway: FakeAgentGateway, machines: AgentGatewayMachines
) -> None:
    space, env = uuid.uuid4(), uuid.uuid4()
    web = fake_gateway.add_machine(space, env, "web-01", ["web"])
    api = fake_gateway.add_machine(space, env, "api-01", ["api"], disabled=True)
    fake_gateway.add_machine(space, env, "db-01", ["db"])
    fake_gateway.add_machine(space, uuid.uuid4(), "web-elsewhere", ["web"])
    found = await machines.find_machines(space, env, ["web", "api"])
    assert {(str(m.id), m.name, m.is_disabled) for m in found} == {
        (web["id"], "web-01", False),
        (api["id"], "api-01", True),
    }
    everything = await machines.find_machines(space, env, [])
    assert {m.name for m in everything} == {"web-01", "api-01", "db-01"}


async def test_a_5xx_is_worth_retrying(
    fake_gateway: FakeAgentGateway, machines: AgentGatewayMachines
) -> None:
    space = uuid.uuid4()
    fake_gateway.fail_next(space, 1)
    with pytest.raises(TargetsUnavailable, match="answered 503"):
        await machines.find_machines(space, uuid.uuid4(), ["web"])


async def test_an_unreachable_gateway_is_worth_retrying() -> None:
    async with create_client(f"http://127.0.0.1:{free_port()}", 1.0) as client:
        with pytest.raises(TargetsUnavailable, match="is unreachable"):
            await AgentGatewayMachines(client).find_machines(uuid.uuid4(), uuid.uuid4(), [])


async def test_a_4xx_is_refused_with_the_gateways_detail(machines: AgentGatewayMachines) -> None:
    space = uuid.UUID("00000000-0000-0000-0000-000000000404")
    with pytest.raises(TargetsRefused, match=r"\(404\): space not found"):
        await machines.find_machines(space, uuid.uuid4(), ["web"])


async def test_an_unreadable_answer_is_refused(machines: AgentGatewayMachines) -> None:
    space = uuid.UUID("00000000-0000-0000-0000-000000000200")
    with pytest.raises(TargetsRefused, match="unreadable machine list"):
        await machines.find_machines(space, uuid.uuid4(), ["web"])
