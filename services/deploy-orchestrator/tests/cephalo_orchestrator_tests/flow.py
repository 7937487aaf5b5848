"""Helpers that play the other services' parts over real NATS: release-service requesting a
deployment, agent-gateway reporting logs and exit codes; and waits on the orchestrator's API."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from nats.aio.client import Client
from nats.aio.subscription import Subscription
from nats.js.errors import NotFoundError

from cephalo_common.agent_protocol import LogSource, ProcessOutput
from cephalo_common.contracts import (
    DEPLOYMENT_REQUESTED,
    STEP_DISPATCH,
    STEP_FINISHED,
    STEP_LOG,
    DeploymentRequestedV1,
    ScriptActionSnapshot,
    StepDispatchV1,
    StepFinishedV1,
    StepLogV1,
)
from cephalo_common.ids import utc_now
from cephalo_common.messaging.envelope import Envelope, new_envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.security import internal_token

from .fakes import FakeAgentGateway

TIMEOUT = 15.0


def step(
    name: str, roles: list[str], body: str = "echo hello", syntax: str = "bash"
) -> ScriptActionSnapshot:
    return ScriptActionSnapshot(
        id=str(uuid.uuid4()),
        name=name,
        action_type="cephalo.script",
        target_roles=roles,
        properties={"script_body": body, "syntax": syntax},
    )


def with_properties(action: ScriptActionSnapshot, **properties: Any) -> ScriptActionSnapshot:
    """`action` with `properties` added to (or replacing) its own."""
    return action.model_copy(update={"properties": {**action.properties, **properties}})


@dataclass
class Scenario:
    """One deployment in its own space, so tests sharing the database never meet."""

    space_id: uuid.UUID = field(default_factory=uuid.uuid4)
    environment_id: uuid.UUID = field(default_factory=uuid.uuid4)
    environment_name: str = field(default_factory=lambda: f"Env-{uuid.uuid4().hex[:6]}")
    project_id: uuid.UUID = field(default_factory=uuid.uuid4)
    project_name: str = "Web App"

    @property
    def space(self) -> str:
        return str(self.space_id)

    def request(
        self, steps: list[ScriptActionSnapshot], *, version: str = "1.0.0", **extra: Any
    ) -> DeploymentRequestedV1:
        return DeploymentRequestedV1(
            deployment_id=str(uuid.uuid4()),
            release_id=str(uuid.uuid4()),
            release_version=version,
            project_id=str(self.project_id),
            project_name=self.project_name,
            environment_id=str(self.environment_id),
            environment_name=self.environment_name,
            steps=steps,
            **extra,
        )

    def tasks_url(self) -> str:
        return f"/api/v1/spaces/{self.space}/tasks"


def deployment_envelope(space: str, request: DeploymentRequestedV1) -> Envelope:
    return new_envelope(
        source="cephalo://release-service",
        type=DEPLOYMENT_REQUESTED.type,
        space=space,
        data=request,
        subject=f"deployments/{request.deployment_id}",
    )


async def request_deployment(
    broker: NatsBroker, space: str, request: DeploymentRequestedV1
) -> Envelope:
    envelope = deployment_envelope(space, request)
    await broker.publish(DEPLOYMENT_REQUESTED.subject(space), envelope)
    return envelope


async def report_log(
    broker: NatsBroker, space: str, dispatch: StepDispatchV1, lines: list[str], first: int = 1
) -> None:
    """One StepLogV1 batch, as agent-gateway sends it (a new event id every time)."""
    message = StepLogV1(
        ticket=dispatch.ticket,
        task_id=dispatch.task_id,
        step_run_id=dispatch.step_run_id,
        machine_id=dispatch.machine_id,
        lines=[
            ProcessOutput(
                sequence=first + offset,
                source=LogSource.STDOUT,
                text=text,
                time=utc_now().isoformat(),
            )
            for offset, text in enumerate(lines)
        ],
    )
    envelope = new_envelope(
        source="cephalo://agent-gateway", type=STEP_LOG.type, space=space, data=message
    )
    await broker.publish(STEP_LOG.subject(space), envelope)


async def report_finished(
    broker: NatsBroker,
    space: str,
    dispatch: StepDispatchV1,
    exit_code: int | None,
    error: str | None = None,
    **extra: Any,
) -> None:
    """`extra`: output_variables, sensitive_output_variables, last_log_sequence, ..."""
    message = StepFinishedV1(
        ticket=dispatch.ticket,
        task_id=dispatch.task_id,
        step_run_id=dispatch.step_run_id,
        machine_id=dispatch.machine_id,
        exit_code=exit_code,
        error=error,
        **extra,
    )
    envelope = new_envelope(
        source="cephalo://agent-gateway", type=STEP_FINISHED.type, space=space, data=message
    )
    await broker.publish(STEP_FINISHED.subject(space), envelope)


def add_targets(
    fake_gateway: FakeAgentGateway,
    scenario: Scenario,
    *names: str,
    roles: tuple[str, ...] = ("web",),
) -> dict[str, str]:
    """Enabled machines named `names` in the scenario's environment: machine id -> name."""
    machines = [
        fake_gateway.add_machine(scenario.space_id, scenario.environment_id, name, list(roles))
        for name in names
    ]
    return {machine["id"]: machine["name"] for machine in machines}


class Dispatches:
    """Every STEP_DISPATCH command published for one space, as agent-gateway would see it."""

    def __init__(self, subscription: Subscription) -> None:
        self._subscription = subscription

    @classmethod
    async def watch(cls, nats_client: Client, space: str) -> Dispatches:
        return cls(await nats_client.subscribe(STEP_DISPATCH.subject(space)))

    async def take(self, count: int, timeout: float = TIMEOUT) -> list[StepDispatchV1]:
        taken: list[StepDispatchV1] = []
        async with asyncio.timeout(timeout):
            while len(taken) < count:
                message = await self._subscription.next_msg(timeout=timeout)
                taken.append(Envelope.from_bytes(message.data).payload(StepDispatchV1))
        return taken

    async def expect_none(self, seconds: float = 1.0) -> None:
        await asyncio.sleep(seconds)
        assert self._subscription.pending_msgs == 0, "an unexpected dispatch was published"

    async def close(self) -> None:
        await self._subscription.unsubscribe()


async def wait_for_task(
    client: httpx.AsyncClient,
    scenario: Scenario,
    deployment_id: str,
    *states: str,
    timeout: float = TIMEOUT,
) -> dict[str, Any]:
    """The deployment's task (with its step runs) once it is in one of `states`."""
    last: Any = None
    try:
        async with asyncio.timeout(timeout):
            while True:
                listed = await client.get(
                    scenario.tasks_url(), params={"deployment_id": deployment_id}
                )
                assert listed.status_code == 200, listed.text
                if listed.json():
                    task_id = listed.json()[0]["id"]
                    last = (await client.get(f"{scenario.tasks_url()}/{task_id}")).json()
                    if not states or last["state"] in states:
                        return dict(last)
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"task never reached {states}; last seen: {last}") from None


async def task_log(client: httpx.AsyncClient, scenario: Scenario, task_id: str) -> list[Any]:
    response = await client.get(f"{scenario.tasks_url()}/{task_id}/log")
    assert response.status_code == 200, response.text
    return list(response.json())


async def log_texts(client: httpx.AsyncClient, scenario: Scenario, task_id: str) -> list[str]:
    return [line["text"] for line in await task_log(client, scenario, task_id)]


async def last_event(
    nats_client: Client,
    stream: str,
    subject: str,
    timeout: float = TIMEOUT,
    where: Callable[[Envelope], bool] = lambda _: True,
) -> Envelope:
    """The newest message on `subject` in `stream` (matching `where`), once it is there."""
    js = nats_client.jetstream()
    async with asyncio.timeout(timeout):
        while True:
            try:
                raw = await js.get_last_msg(stream, subject)
            except NotFoundError:
                await asyncio.sleep(0.05)
                continue
            assert raw.data is not None
            envelope = Envelope.from_bytes(raw.data)
            if where(envelope):
                return envelope
            await asyncio.sleep(0.05)


def identity(name: str = "alice") -> dict[str, str]:
    """api-gateway's signed identity header for `name` (the dev secret of the test settings)."""
    token = internal_token.sign(
        {"sub": name, "name": name}, "deploy-orchestrator", b"cephalo-dev-internal-secret"
    )
    return {internal_token.HEADER: token}
