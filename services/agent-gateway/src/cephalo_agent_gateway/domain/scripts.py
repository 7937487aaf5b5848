"""Typed calls to an agent's `CapabilitiesService` and `ScriptService` over any transport."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cephalo_agent_gateway.domain.transport import Transport
from cephalo_common.agent_protocol import (
    ISOLATION_FEATURE,
    STATUS_WAIT_FEATURE,
    Capabilities,
    RequestMessage,
    ScriptMethods,
    ScriptStatusResponse,
    ScriptTicketRequest,
    Services,
    StartScriptCommand,
)
from cephalo_common.ids import uuid7

Result = TypeVar("Result", bound=BaseModel)
_ISOLATION_FIELDS = {"isolation", "isolation_mutex_name", "isolation_mutex_timeout_seconds"}
_WAIT_FIELDS = {"wait_seconds"}


class RemoteCallFailed(Exception):
    """The agent answered with a `RemoteError` (or an unreadable result): retrying won't help."""

    def __init__(self, method: str, type_: str, message: str) -> None:
        super().__init__(f"{method} failed on the agent: {type_}: {message}")
        self.method = method
        self.type = type_
        self.message = message


class ScriptClient:
    """One machine's agent, seen as the services of contract `script/v1`."""

    def __init__(self, transport: Transport, machine_id: uuid.UUID) -> None:
        self._transport = transport
        self._machine_id = machine_id

    async def get_capabilities(self) -> Capabilities:
        return await self._call(Services.CAPABILITIES, "get_capabilities", {}, Capabilities)

    async def start_script(
        self, command: StartScriptCommand, capabilities: Capabilities | None = None
    ) -> ScriptStatusResponse:
        """Start the script; a feature's fields go only to agents that advertise it."""
        features = set(capabilities.contract_versions) if capabilities is not None else set()
        excluded = set() if ISOLATION_FEATURE in features else set(_ISOLATION_FIELDS)
        if STATUS_WAIT_FEATURE not in features or command.wait_seconds is None:
            excluded |= _WAIT_FIELDS
        params = command.model_dump(mode="json", exclude=excluded)
        return await self._call(Services.SCRIPT, ScriptMethods.START, params, ScriptStatusResponse)

    async def get_status(
        self, ticket: str, last_log_sequence: int, wait_seconds: float | None = None
    ) -> ScriptStatusResponse:
        """`wait_seconds` only for agents with `STATUS_WAIT_FEATURE` (older ones refuse it)."""
        return await self._script(
            ScriptMethods.GET_STATUS,
            ScriptTicketRequest(
                ticket=ticket, last_log_sequence=last_log_sequence, wait_seconds=wait_seconds
            ),
        )

    async def cancel_script(self, ticket: str, last_log_sequence: int) -> ScriptStatusResponse:
        return await self._script(
            ScriptMethods.CANCEL,
            ScriptTicketRequest(ticket=ticket, last_log_sequence=last_log_sequence),
        )

    async def complete_script(self, ticket: str, last_log_sequence: int) -> ScriptStatusResponse:
        return await self._script(
            ScriptMethods.COMPLETE,
            ScriptTicketRequest(ticket=ticket, last_log_sequence=last_log_sequence),
        )

    async def _script(self, method: str, params: ScriptTicketRequest) -> ScriptStatusResponse:
        """An unset `wait_seconds` is left out: agents without the feature refuse the field."""
        return await self._call(
            Services.SCRIPT,
            method,
            params.model_dump(mode="json", exclude_none=True),
            ScriptStatusResponse,
        )

    async def _call(
        self, service: str, method: str, params: dict[str, Any], result: type[Result]
    ) -> Result:
        request = RequestMessage(id=str(uuid7()), service=service, method=method, params=params)
        response = await self._transport.invoke(self._machine_id, request)
        if response.error is not None:
            raise RemoteCallFailed(method, response.error.type, response.error.message)
        try:
            return result.model_validate(response.result or {})
        except ValidationError as error:
            raise RemoteCallFailed(method, "InvalidResponse", str(error)) from error
