"""Dispatch of RPC requests to the agent's services; nothing ever raises across the wire.

Every failure (unknown service or method, invalid params, a domain error, a bug) becomes a
`ResponseMessage` with `error=RemoteError(message, type)`, correlated by the request id, so the
server can always tell "the agent said no" from "the call was lost". Error types:

- `InvalidRequest`: the frame was not a request message (only when it still carried an id).
- `UnknownService`, `UnknownMethod`: nothing here answers that name.
- `InvalidParams`: the params did not validate; the message lists fields, never values.
- otherwise the exception's class name, e.g. `UnknownTicket`, `InvalidTicket`,
  `ScriptStillRunning`, `ValueError`.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from cephalo_agent import agent_version
from cephalo_agent.files import FileTransferService, InvalidPath, StreamMismatch
from cephalo_agent.journal import InvalidTicket
from cephalo_agent.scripts import ScriptService, ScriptStillRunning, UnknownTicket
from cephalo_common.agent_protocol import (
    CONTRACT_VERSION,
    FILE_TRANSFER_FEATURE,
    ISOLATION_FEATURE,
    STATUS_WAIT_FEATURE,
    STEP_ARTIFACTS_FEATURE,
    STEP_RUNNER_FEATURE,
    Capabilities,
    DownloadArtifactRequest,
    DownloadFileRequest,
    FileMethods,
    RemoteError,
    RequestMessage,
    ResponseMessage,
    ScriptMethods,
    ScriptSyntax,
    ScriptTicketRequest,
    Services,
    StartScriptCommand,
    UploadFileCommand,
)

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[BaseModel]]
_M = TypeVar("_M", bound=BaseModel)
# Refusals the caller caused: logged briefly, without a traceback.
_EXPECTED = (
    UnknownTicket,
    InvalidTicket,
    ScriptStillRunning,
    ValueError,
    InvalidPath,
    StreamMismatch,
    FileNotFoundError,
)


class RpcError(Exception):
    """An error whose `type` is chosen for the wire rather than taken from the class name."""

    def __init__(self, type_: str, message: str) -> None:
        super().__init__(message)
        self.type = type_


class CapabilitiesService:
    """Tells the server which contract versions and script syntaxes this agent supports."""

    def __init__(self, *, file_transfer: bool = False, step_artifacts: bool = False) -> None:
        self.file_transfer = file_transfer
        self.step_artifacts = step_artifacts

    def get_capabilities(self) -> Capabilities:
        shells = [
            syntax.value
            for syntax, interpreter in (
                (ScriptSyntax.BASH, "/bin/bash"),
                (ScriptSyntax.SH, "/bin/sh"),
            )
            if Path(interpreter).exists()
        ]
        shells.append(ScriptSyntax.PYTHON.value)
        return Capabilities(
            contract_versions=[
                CONTRACT_VERSION,
                ISOLATION_FEATURE,
                STEP_RUNNER_FEATURE,
                STATUS_WAIT_FEATURE,
                *([FILE_TRANSFER_FEATURE] if self.file_transfer else []),
                *([STEP_ARTIFACTS_FEATURE] if self.step_artifacts else []),
            ],
            agent_version=agent_version(),
            os=f"{platform.system()} {platform.release()}".strip(),
            shells=shells,
        )


class AgentService:
    """The agent's RPC surface: `CapabilitiesService`, `ScriptService`, `FileTransferService`."""

    def __init__(
        self,
        scripts: ScriptService,
        capabilities: CapabilitiesService | None = None,
        files: FileTransferService | None = None,
    ) -> None:
        self.scripts = scripts
        self.files = files
        self.capabilities = capabilities or CapabilitiesService(
            file_transfer=files is not None,
            step_artifacts=files is not None and files.work_dir is not None,
        )
        self._handlers: dict[tuple[str, str], Handler] = {
            (Services.CAPABILITIES, "get_capabilities"): self._get_capabilities,
            (Services.SCRIPT, ScriptMethods.START): self._start_script,
            (Services.SCRIPT, ScriptMethods.GET_STATUS): self._ticket_call(scripts.get_status),
            (Services.SCRIPT, ScriptMethods.CANCEL): self._ticket_call(scripts.cancel_script),
            (Services.SCRIPT, ScriptMethods.COMPLETE): self._ticket_call(scripts.complete_script),
        }
        if files is not None:
            self._handlers[(Services.FILE_TRANSFER, FileMethods.UPLOAD)] = self._upload_file
            self._handlers[(Services.FILE_TRANSFER, FileMethods.DOWNLOAD)] = self._download_file
            self._handlers[(Services.FILE_TRANSFER, FileMethods.DOWNLOAD_ARTIFACT)] = (
                self._download_artifact
            )

    async def handle(self, request: RequestMessage) -> ResponseMessage:
        """Run one request; always returns a response (cancellation aside)."""
        try:
            handler = self._handlers.get((request.service, request.method))
            if handler is None:
                if not any(service == request.service for service, _ in self._handlers):
                    raise RpcError("UnknownService", f"unknown service {request.service!r}")
                raise RpcError(
                    "UnknownMethod", f"{request.service} has no method {request.method!r}"
                )
            result = await handler(request.params)
            return ResponseMessage(id=request.id, result=result.model_dump(mode="json"))
        except Exception as exc:  # noqa: BLE001 - never raise across the wire
            return ResponseMessage(id=request.id, error=to_remote_error(exc))

    async def handle_text(self, text: str | bytes) -> ResponseMessage | None:
        """Parse and run one frame. None only when there is no id to answer to."""
        try:
            request = RequestMessage.model_validate_json(text)
        except ValidationError as exc:
            request_id = _salvage_id(text)
            if request_id is None:
                log.warning("dropped a frame that is not a request message: %s", _describe(exc))
                return None
            error = RemoteError(type="InvalidRequest", message=_describe(exc))
            return ResponseMessage(id=request_id, error=error)
        return await self.handle(request)

    async def _get_capabilities(self, params: dict[str, Any]) -> BaseModel:
        return self.capabilities.get_capabilities()

    async def _start_script(self, params: dict[str, Any]) -> BaseModel:
        return await self.scripts.start_script(_parse(StartScriptCommand, params))

    async def _upload_file(self, params: dict[str, Any]) -> BaseModel:
        assert self.files is not None
        return await self.files.upload_file(_parse(UploadFileCommand, params))

    async def _download_file(self, params: dict[str, Any]) -> BaseModel:
        assert self.files is not None
        return await self.files.download_file(_parse(DownloadFileRequest, params))

    async def _download_artifact(self, params: dict[str, Any]) -> BaseModel:
        assert self.files is not None
        return await self.files.download_artifact(_parse(DownloadArtifactRequest, params))

    @staticmethod
    def _ticket_call(method: Callable[[ScriptTicketRequest], Awaitable[BaseModel]]) -> Handler:
        async def call(params: dict[str, Any]) -> BaseModel:
            return await method(_parse(ScriptTicketRequest, params))

        return call


def to_remote_error(exc: Exception) -> RemoteError:
    if isinstance(exc, RpcError):
        return RemoteError(type=exc.type, message=str(exc))
    if isinstance(exc, ValidationError):
        return RemoteError(type="InvalidParams", message=_describe(exc))
    if isinstance(exc, _EXPECTED):
        log.info("request refused: %s: %s", type(exc).__name__, exc)
    else:
        log.error("request failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
    return RemoteError(type=type(exc).__name__, message=str(exc) or type(exc).__name__)


def _parse(model: type[_M], params: dict[str, Any]) -> _M:
    return model.model_validate(params)


def _describe(exc: ValidationError) -> str:
    """Validation errors without the input values, which may be secrets."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "(root)"
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts) or "invalid"


def _salvage_id(text: str | bytes) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    request_id = data.get("id") if isinstance(data, dict) else None
    return request_id if isinstance(request_id, str) else None
