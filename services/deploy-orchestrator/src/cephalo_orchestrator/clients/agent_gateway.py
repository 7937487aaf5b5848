"""agent-gateway over HTTP, as the domain's `MachineDirectory`.

Transport errors, timeouts, 408/429 and 5xx are `TargetsUnavailable` (the step start is
retried with back-off); any other 4xx or an unreadable body is `TargetsRefused` (the task
fails with the reason).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import httpx
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from cephalo_orchestrator.domain.reconciler import GatewayRun
from cephalo_orchestrator.domain.targets import Machine, TargetsRefused, TargetsUnavailable

RETRYABLE_STATUSES = frozenset({408, 425, 429})


class MachineResource(BaseModel):
    """The fields of agent-gateway's machine resource this service reads."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    name: str
    environment_ids: list[str] | None = None
    roles: list[str] | None = None
    is_disabled: bool = False
    health_status: str = "Unknown"


class ScriptRunResource(BaseModel):
    """The fields of agent-gateway's script run resource this service reads."""

    model_config = ConfigDict(extra="ignore")

    state: str
    exit_code: int | None = None
    error: str | None = None
    last_log_sequence: int = 0
    started_at: datetime | None = None
    finished_at: datetime | None = None


_MACHINES = TypeAdapter(list[MachineResource])


def create_client(base_url: str, timeout_seconds: float) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(timeout_seconds))


class AgentGatewayMachines:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def find_machines(
        self, space_id: uuid.UUID, environment_id: uuid.UUID, roles: Sequence[str]
    ) -> Sequence[Machine]:
        params: list[tuple[str, str | int | float | bool | None]] = [
            ("environment_id", str(environment_id)),
            *(("role", role) for role in roles),
        ]
        where = f"agent-gateway at {self._client.base_url}"
        try:
            response = await self._client.get(f"/api/v1/spaces/{space_id}/machines", params=params)
        except httpx.HTTPError as error:
            raise TargetsUnavailable(f"{where} is unreachable ({_describe(error)})") from error
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES:
            raise TargetsUnavailable(f"{where} answered {response.status_code}")
        if response.status_code >= 400:
            raise TargetsRefused(
                f"{where} refused the machines query ({response.status_code}): {_detail(response)}",
                response.status_code,
            )
        try:
            resources = _MACHINES.validate_json(response.content)
        except ValidationError as error:
            raise TargetsRefused(f"{where} sent an unreadable machine list: {error}") from error
        return [
            Machine(
                id=resource.id,
                name=resource.name,
                roles=tuple(resource.roles or ()),
                is_disabled=resource.is_disabled,
                health_status=resource.health_status,
            )
            for resource in resources
            if _matches(resource, environment_id, roles)
        ]

    async def cancel_script(self, space_id: uuid.UUID, ticket: str) -> None:
        """404 (not there yet) and 409 (already finished) need no retry; the grace period
        covers a dispatch that reaches agent-gateway after this call."""
        where = f"agent-gateway at {self._client.base_url}"
        path = f"/api/v1/spaces/{space_id}/script-runs/{ticket}/cancel"
        try:
            response = await self._client.post(path)
        except httpx.HTTPError as error:
            raise TargetsUnavailable(f"{where} is unreachable ({_describe(error)})") from error
        if response.status_code >= 500 or response.status_code in RETRYABLE_STATUSES:
            raise TargetsUnavailable(f"{where} answered {response.status_code}")

    async def script_run(self, space_id: uuid.UUID, ticket: str) -> GatewayRun | None:
        where = f"agent-gateway at {self._client.base_url}"
        try:
            response = await self._client.get(f"/api/v1/spaces/{space_id}/script-runs/{ticket}")
        except httpx.HTTPError as error:
            raise TargetsUnavailable(f"{where} is unreachable ({_describe(error)})") from error
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise TargetsUnavailable(f"{where} answered {response.status_code}")
        try:
            found = ScriptRunResource.model_validate_json(response.content)
        except ValidationError as error:
            raise TargetsUnavailable(f"{where} sent an unreadable script run: {error}") from error
        return GatewayRun(
            state=found.state,
            exit_code=found.exit_code,
            error=found.error,
            last_log_sequence=found.last_log_sequence,
            finished_at=found.finished_at,
            started_at=found.started_at,
        )


def _matches(resource: MachineResource, environment_id: uuid.UUID, roles: Sequence[str]) -> bool:
    """Re-check the documented filter, so a lenient peer cannot widen where a step runs."""
    if resource.environment_ids is not None and str(environment_id) not in {
        value.lower() for value in resource.environment_ids
    }:
        return False
    if roles and resource.roles is not None:
        wanted = {role.lower() for role in roles}
        return any(role.lower() in wanted for role in resource.roles)
    return True


def _describe(error: httpx.HTTPError) -> str:
    message = str(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body)[:200]
    return str(body)[:200]
