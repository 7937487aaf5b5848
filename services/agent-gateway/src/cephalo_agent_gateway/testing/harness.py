"""Run agent-gateway in-process and play the other services' parts over real NATS."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import nats
from fastapi import FastAPI
from nats.aio.client import Client
from nats.aio.msg import Msg

from cephalo_agent_gateway.app import create_app
from cephalo_agent_gateway.runtime import Gateway, gateway_of
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_common.contracts import (
    STEP_DISPATCH,
    STEP_FINISHED,
    STEP_LOG,
    StepDispatchV1,
    StepFinishedV1,
    StepLogV1,
)
from cephalo_common.ids import uuid7
from cephalo_common.messaging.envelope import Envelope, new_envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.testing import running

WAIT_SECONDS = 20.0


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid7().hex[-10:]}"


async def eventually(check: Callable[[], Any], timeout: float = WAIT_SECONDS) -> Any:
    """Poll `check` (sync or async) until it returns something truthy; return that."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.05)


@dataclass(frozen=True)
class Space:
    id: uuid.UUID
    environments: dict[str, uuid.UUID]


@dataclass
class RunningGateway:
    app: FastAPI
    client: httpx.AsyncClient
    settings: AgentGatewaySettings

    @property
    def gateway(self) -> Gateway:
        return gateway_of(self.app.state.runtime)

    @property
    def server_pem(self) -> str:
        return self.gateway.identity.certificate_pem

    @property
    def endpoint(self) -> str:
        return self.settings.polling_endpoint

    def start_agent(self, agent: FakeAgent, *, reconnect: bool = True) -> None:
        agent.start(self.endpoint, self.server_pem, reconnect=reconnect)

    async def register(
        self,
        agent: FakeAgent,
        space: Space,
        *,
        name: str | None = None,
        environments: list[str] | None = None,
        roles: list[str] | None = None,
    ) -> dict[str, Any]:
        response = await self.client.post(
            f"/api/v1/spaces/{space.id}/machines/register",
            json={
                "name": name or unique("machine"),
                "certificate_pem": agent.certificate_pem,
                "environments": environments or ["Production"],
                "roles": roles if roles is not None else ["web"],
                "mode": "polling",
            },
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    async def machine(self, space: Space, machine_id: str) -> dict[str, Any]:
        response = await self.client.get(f"/api/v1/spaces/{space.id}/machines/{machine_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def wait_connected(self, space: Space, machine_id: str, expected: bool = True) -> None:
        async def settled() -> bool:
            return (await self.machine(space, machine_id))["connected"] is expected

        await eventually(settled)


@asynccontextmanager
async def gateway_running(settings: AgentGatewaySettings) -> AsyncIterator[RunningGateway]:
    """The app's whole lifespan (relay, consumer, listener, supervisor) and a client."""
    app = create_app(settings)
    async with running(app) as client:
        running_gateway = RunningGateway(app, client, settings)
        await asyncio.wait_for(running_gateway.gateway.listener.serving.wait(), WAIT_SECONDS)
        yield running_gateway


@dataclass
class StepEvents:
    """STEP_LOG and STEP_FINISHED of one space, as the orchestrator receives them."""

    logs: list[StepLogV1] = field(default_factory=list)
    finished: list[StepFinishedV1] = field(default_factory=list)

    def lines(self, ticket: str) -> list[str]:
        return [line.text for event in self.logs if event.ticket == ticket for line in event.lines]

    def sequences(self, ticket: str) -> list[int]:
        return [
            line.sequence for event in self.logs if event.ticket == ticket for line in event.lines
        ]

    def finished_for(self, ticket: str) -> list[StepFinishedV1]:
        return [event for event in self.finished if event.ticket == ticket]

    async def wait_finished(self, ticket: str, timeout: float = WAIT_SECONDS) -> StepFinishedV1:
        found: list[StepFinishedV1] = await eventually(lambda: self.finished_for(ticket), timeout)
        return found[0]


@asynccontextmanager
async def step_events(nats_url: str, space: Space) -> AsyncIterator[StepEvents]:
    events = StepEvents()
    connection: Client = await nats.connect(nats_url)

    async def on_log(message: Msg) -> None:
        events.logs.append(Envelope.from_bytes(message.data).payload(StepLogV1))

    async def on_finished(message: Msg) -> None:
        events.finished.append(Envelope.from_bytes(message.data).payload(StepFinishedV1))

    try:
        await connection.subscribe(STEP_LOG.subject(str(space.id)), cb=on_log)
        await connection.subscribe(STEP_FINISHED.subject(str(space.id)), cb=on_finished)
        await connection.flush()
        yield events
    finally:
        await connection.close()


@dataclass
class Orchestrator:
    """Publishes `step.dispatch` commands exactly as deploy-orchestrator does."""

    broker: NatsBroker

    async def dispatch(
        self, space: Space, machine_id: str, ticket: str | None = None, **fields: Any
    ) -> Envelope:
        values: dict[str, Any] = {
            "ticket": ticket or unique("ticket"),
            "task_id": str(uuid7()),
            "step_run_id": str(uuid7()),
            "machine_id": machine_id,
            "script_body": "echo hello; echo world",
        }
        values.update(fields)
        data = StepDispatchV1(**values)
        return await self.send(space, data)

    async def redeliver(self, space: Space, envelope: Envelope) -> Envelope:
        """The same command in a new envelope (new id): what a producer retry looks like."""
        return await self.send(space, StepDispatchV1.model_validate(envelope.data))

    async def send(self, space: Space, data: StepDispatchV1) -> Envelope:
        envelope = new_envelope(
            source="cephalo://test-orchestrator",
            type=STEP_DISPATCH.type,
            space=str(space.id),
            data=data,
        )
        await self.broker.publish(STEP_DISPATCH.subject(str(space.id)), envelope)
        return envelope
