"""A minimal in-test polling agent: real mutual TLS and WebSocket, scripted answers.

It answers `CapabilitiesService` and `ScriptService` the way the real agent does (a ticket
runs once; a script reveals one log line per `get_status`, then reports Complete), and
records every call, so tests can prove what the gateway asked and how often.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cephalo_common.agent_protocol import (
    CONTRACT_VERSION,
    LogSource,
    ProcessOutput,
    ProcessState,
    RemoteError,
    RequestMessage,
    ResponseMessage,
    ScriptStatusResponse,
    ScriptTicketRequest,
    StartScriptCommand,
)
from cephalo_common.ids import utc_now
from cephalo_common.security.tls import CERT_FILE, KEY_FILE, client_context, write_identity


@dataclass
class FakeScript:
    ticket: str
    lines: list[str]
    exit_code: int
    revealed: int = 0
    completed: bool = False

    def status(self, after: int, *, reveal: bool) -> ScriptStatusResponse:
        """One more line per call once the caller has read the last; then Complete."""
        if reveal and after >= self.revealed and self.revealed < len(self.lines):
            self.revealed += 1
        logs = [
            ProcessOutput(
                sequence=n,
                source=LogSource.STDOUT,
                text=self.lines[n - 1],
                time=utc_now().isoformat(),
            )
            for n in range(after + 1, self.revealed + 1)
        ]
        done = not logs and after >= len(self.lines)
        return ScriptStatusResponse(
            ticket=self.ticket,
            state=ProcessState.COMPLETE if done else ProcessState.RUNNING,
            exit_code=self.exit_code if done else None,
            logs=logs,
            next_log_sequence=logs[-1].sequence if logs else after,
        )


@dataclass(frozen=True)
class Call:
    method: str
    params: dict[str, Any]
    connection: int  # 1 for the first connection, 2 after the first reconnect, ...


@dataclass
class FakeAgent:
    directory: Path
    lines: list[str] = field(default_factory=lambda: ["hello", "world"])
    exit_code: int = 0
    calls: list[Call] = field(default_factory=list)
    starts: Counter[str] = field(default_factory=Counter)
    scripts: dict[str, FakeScript] = field(default_factory=dict)
    # Once `hold_at` lines are out, nothing more is revealed until `progress` is set.
    hold_at: int | None = None
    progress: asyncio.Event = field(default_factory=asyncio.Event)
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    close_codes: list[int | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.thumbprint = write_identity(self.directory, "fake-agent")
        self.certificate_pem = (self.directory / CERT_FILE).read_text()
        self.connections = 0
        self._websocket: ClientConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._answers: set[asyncio.Task[None]] = set()

    def context(self, server_pem: str) -> Any:
        return client_context(self.directory / CERT_FILE, self.directory / KEY_FILE, server_pem)

    async def open(self, endpoint: str, server_pem: str) -> ClientConnection:
        return await connect(
            endpoint, ssl=self.context(server_pem), open_timeout=5, compression=None
        )

    def start(self, endpoint: str, server_pem: str, *, reconnect: bool = True) -> None:
        """Connect and serve in the background; with `reconnect`, come back after any drop."""
        self._task = asyncio.create_task(self._run(endpoint, server_pem, reconnect))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.drop()

    async def drop(self) -> None:
        """Close the socket from the agent's side (the network went away)."""
        websocket = self._websocket
        if websocket is not None:
            await websocket.close()

    async def _run(self, endpoint: str, server_pem: str, reconnect: bool) -> None:
        while True:
            try:
                websocket = await self.open(endpoint, server_pem)
            except Exception:
                if not reconnect:
                    raise
                await asyncio.sleep(0.1)
                continue
            self._websocket = websocket
            self.connections += 1
            self.connected.set()
            try:
                async for frame in websocket:
                    task = asyncio.create_task(self._answer(websocket, frame))
                    self._answers.add(task)
                    task.add_done_callback(self._answers.discard)
            except ConnectionClosed:
                pass
            finally:
                self.connected.clear()
                self._websocket = None
                await websocket.close()
                self.close_codes.append(websocket.close_code)
            if not reconnect:
                return
            await asyncio.sleep(0.1)

    async def _answer(self, websocket: ClientConnection, frame: str | bytes) -> None:
        request = RequestMessage.model_validate_json(frame)
        self.calls.append(Call(request.method, dict(request.params), self.connections))
        try:
            result = self.handle(request)
            response = ResponseMessage(id=request.id, result=result)
        except LookupError as error:
            response = ResponseMessage(
                id=request.id, error=RemoteError(type="UnknownTicket", message=str(error))
            )
        with contextlib.suppress(ConnectionClosed):
            await websocket.send(response.model_dump_json())

    def handle(self, request: RequestMessage) -> dict[str, Any]:
        if request.method == "get_capabilities":
            return {
                "contract_versions": [CONTRACT_VERSION],
                "agent_version": "fake",
                "os": "test",
                "shells": ["bash", "sh", "python"],
            }
        if request.method == "start_script":
            command = StartScriptCommand.model_validate(request.params)
            if command.ticket not in self.scripts:
                self.starts[command.ticket] += 1
                self.scripts[command.ticket] = FakeScript(
                    command.ticket, list(self.lines), self.exit_code
                )
            return self.scripts[command.ticket].status(0, reveal=False).model_dump(mode="json")
        ticket_request = ScriptTicketRequest.model_validate(request.params)
        script = self.scripts.get(ticket_request.ticket)
        if script is None:
            raise LookupError(f"no script was started with ticket {ticket_request.ticket}")
        if request.method == "complete_script":
            script.completed = True
        held = self.hold_at is not None and script.revealed >= self.hold_at
        reveal = request.method == "get_status" and (not held or self.progress.is_set())
        return script.status(ticket_request.last_log_sequence, reveal=reveal).model_dump(
            mode="json"
        )

    def calls_of(self, method: str, ticket: str | None = None) -> list[Call]:
        return [
            call
            for call in self.calls
            if call.method == method and (ticket is None or call.params.get("ticket") == ticket)
        ]
