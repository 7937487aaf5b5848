"""Wire models shared by agent-gateway and the agent (contract `script/v1`).

The server is always the RPC client and the agent the RPC service; only the transport
flips (polling: the agent dials in over a TLS WebSocket; listening: the server dials out).
Requests and responses are correlated by id only, and a service never throws across the
wire: every failure comes back as a `RemoteError`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CONTRACT_VERSION = "script/v1"
POLLING_PATH = "/poll"


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestMessage(WireModel):
    id: str
    service: str
    method: str
    params: dict[str, Any] = Field(default_factory=dict)


class RemoteError(WireModel):
    message: str
    type: str = "ServerError"


class ResponseMessage(WireModel):
    id: str
    result: dict[str, Any] | None = None
    error: RemoteError | None = None


class Services(StrEnum):
    CAPABILITIES = "CapabilitiesService"
    SCRIPT = "ScriptService"


class ScriptMethods(StrEnum):
    START = "start_script"
    GET_STATUS = "get_status"
    CANCEL = "cancel_script"
    COMPLETE = "complete_script"


class Capabilities(WireModel):
    contract_versions: list[str]
    agent_version: str
    os: str
    shells: list[str]


class ScriptSyntax(StrEnum):
    BASH = "bash"
    SH = "sh"
    PYTHON = "python"


class ProcessState(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    COMPLETE = "Complete"


class LogSource(StrEnum):
    STDOUT = "stdout"
    STDERR = "stderr"


class ProcessOutput(WireModel):
    sequence: int
    source: LogSource
    text: str
    time: str


class StartScriptCommand(WireModel):
    """Runs once per ticket: a second start with the same ticket returns the first's status."""

    ticket: str
    script_body: str
    syntax: ScriptSyntax = ScriptSyntax.BASH
    variables: dict[str, str] = Field(default_factory=dict)
    sensitive_variables: list[str] = Field(default_factory=list)
    timeout_seconds: int | None = None


class ScriptTicketRequest(WireModel):
    ticket: str
    last_log_sequence: int = 0


class ScriptStatusResponse(WireModel):
    ticket: str
    state: ProcessState
    exit_code: int | None = None
    logs: list[ProcessOutput] = Field(default_factory=list)
    next_log_sequence: int = 0
