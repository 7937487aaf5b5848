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
# Listening mode: the server POSTs one RequestMessage (JSON) here and reads the ResponseMessage.
LISTENING_PATH = "/rpc"
DEFAULT_LISTENING_PORT = 10933
DEFAULT_POLLING_PORT = 10943
# Optional features an agent lists beside `CONTRACT_VERSION` in `contract_versions`; a server
# uses a feature's fields only when the agent advertises it, so old agents keep working.
ISOLATION_FEATURE = "script-isolation/v1"
FILE_TRANSFER_FEATURE = "file-transfer/v1"
# The agent can run `cephalo_agent.steprunner` (typed actions, helpers, output variables).
STEP_RUNNER_FEATURE = "step-runner/v1"
# The agent hands out the files a step announced as artifacts (`download_artifact`).
STEP_ARTIFACTS_FEATURE = "step-artifacts/v1"
# The agent holds `start_script` and `get_status` open until the script has news for the
# caller (`wait_seconds`): one call instead of a poll every half second.
STATUS_WAIT_FEATURE = "script-status-wait/v1"
# The longest a caller may ask the agent to hold a call open; below every RPC timeout.
MAX_WAIT_SECONDS = 20.0


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
    FILE_TRANSFER = "FileTransferService"


class ScriptMethods(StrEnum):
    START = "start_script"
    GET_STATUS = "get_status"
    CANCEL = "cancel_script"
    COMPLETE = "complete_script"


class FileMethods(StrEnum):
    UPLOAD = "upload_file"
    DOWNLOAD = "download_file"
    DOWNLOAD_ARTIFACT = "download_artifact"


class ExitCodes:
    """Exit codes the agent chooses when the script's own code is not the answer."""

    CANCELLED = -1
    OUTCOME_UNKNOWN = -2  # the agent restarted or lost track; the script may or may not have run
    TIMED_OUT = -3
    FAILED_TO_START = -4
    ISOLATION_TIMEOUT = -5  # never started: the isolation mutex was not free in time


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


class ScriptIsolation(StrEnum):
    """FullIsolation: one script at a time per mutex name (deployment steps on a target).
    NoIsolation: never waits (health checks, workers)."""

    FULL = "FullIsolation"
    NONE = "NoIsolation"


DEFAULT_ISOLATION_MUTEX = "RunningScript"


class StartScriptCommand(WireModel):
    """Runs once per ticket: a second start with the same ticket returns the first's status.

    The isolation fields belong to `ISOLATION_FEATURE`, `wait_seconds` to `STATUS_WAIT_FEATURE`:
    send them only to agents that list the feature. With `wait_seconds` the answer comes once
    the script is Complete, or after that long (also while it waits for its isolation mutex).
    """

    ticket: str
    script_body: str
    syntax: ScriptSyntax = ScriptSyntax.BASH
    variables: dict[str, str] = Field(default_factory=dict)
    sensitive_variables: list[str] = Field(default_factory=list)
    timeout_seconds: int | None = None
    isolation: ScriptIsolation = ScriptIsolation.NONE
    isolation_mutex_name: str = Field(DEFAULT_ISOLATION_MUTEX, min_length=1, max_length=200)
    isolation_mutex_timeout_seconds: float | None = Field(None, gt=0)
    wait_seconds: float | None = Field(None, gt=0, le=MAX_WAIT_SECONDS)


class ScriptTicketRequest(WireModel):
    """`wait_seconds` (`STATUS_WAIT_FEATURE`, `get_status` only): answer as soon as there is a
    line after `last_log_sequence` or the script is Complete, at the latest after that long."""

    ticket: str
    last_log_sequence: int = 0
    wait_seconds: float | None = Field(None, gt=0, le=MAX_WAIT_SECONDS)


class ScriptStatusResponse(WireModel):
    ticket: str
    state: ProcessState
    exit_code: int | None = None
    logs: list[ProcessOutput] = Field(default_factory=list)
    next_log_sequence: int = 0


class StreamRef(WireModel):
    """A byte stream that travels beside the JSON message, never inside it.

    Polling: binary WebSocket frames `<16-byte stream id><chunk>`, an empty chunk ends it.
    Listening: the HTTP body of `PUT|GET /streams/<id>` on the agent.
    """

    id: str = Field(pattern=r"^[0-9a-f]{32}$")
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class UploadFileCommand(WireModel):
    """Store the stream at `path`, relative to the agent's `files/` directory (atomically)."""

    path: str = Field(min_length=1, max_length=1000)
    stream: StreamRef


class DownloadFileRequest(WireModel):
    path: str = Field(min_length=1, max_length=1000)


class DownloadArtifactRequest(WireModel):
    """A file a step announced as an artifact: `path` (absolute, or relative to the ticket's
    work directory) must resolve inside that work directory, and be at most `max_bytes`."""

    ticket: str = Field(min_length=1, max_length=200)
    path: str = Field(min_length=1, max_length=4096)
    max_bytes: int = Field(gt=0)


class FileTransferResult(WireModel):
    path: str
    size: int
    sha256: str
    stream: StreamRef | None = None  # set by download_file: the bytes follow as that stream
