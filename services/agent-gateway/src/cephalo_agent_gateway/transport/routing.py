"""Calls for polling agents held by another replica, over core NATS request/reply.

A replica that holds machine M's polling connection subscribes to `cephalo.agent.req.<M>`
(queue group `agent-gateway`, so exactly one holder answers during a hand-over). A caller
subscribes to `cephalo.agent.resp.<route-id>`, publishes the `RequestMessage` with that
reply subject, and reads:

- `accepted`, then a `heartbeat` every `route_heartbeat_seconds` while the agent works;
- `response` (the agent's `ResponseMessage`), or `error` (the holder's `TransportError`), or
  `absent` (the holder just lost the connection);
- NATS's own no-responders status when no replica holds M.

Silence for `route_peer_timeout_seconds` means the holder died: the call fails with
`ConnectionLost` (retried by the caller) instead of waiting out the RPC timeout.

File streams travel beside the call through the `FileRelay` object store: for an `upload`
call the caller stores the file first and names it in the `Cephalo-Stream` header, the
holder fetches it and streams it to the agent; for a `download` call the holder stores what
the agent sent and names it in its `response`, the caller fetches it. These calls are bounded
by the heartbeats alone (a large file may take longer than one RPC timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import ValidationError

from cephalo_agent_gateway.domain.transport import (
    ConnectionLost,
    MachineNotConnected,
    RpcTimeout,
    TransportError,
)
from cephalo_agent_gateway.transport.bus import AgentBus, NotConnected
from cephalo_agent_gateway.transport.file_relay import FileRelay
from cephalo_agent_gateway.transport.polling import ConnectionRegistry
from cephalo_common.agent_protocol import RequestMessage, ResponseMessage
from cephalo_common.ids import uuid7
from cephalo_common.logging import get_logger
from cephalo_common.messaging import subjects

log = get_logger(__name__)

QUEUE_GROUP = "agent-gateway"
KIND = "Cephalo-Route-Kind"
REPLICA = "Cephalo-Replica"
STREAM = "Cephalo-Stream"
CALL, UPLOAD, DOWNLOAD = "call", "upload", "download"
_ERRORS: dict[str, type[TransportError]] = {
    "ConnectionLost": ConnectionLost,
    "RpcTimeout": RpcTimeout,
    "MachineNotConnected": MachineNotConnected,
}


@dataclass(frozen=True)
class RouteSettings:
    replica: str
    rpc_timeout_seconds: float
    heartbeat_seconds: float
    peer_timeout_seconds: float


class NatsRoute:
    """Both sides of routed calls: serving local connections, calling remote ones."""

    def __init__(
        self,
        bus: AgentBus,
        registry: ConnectionRegistry,
        settings: RouteSettings,
        files: FileRelay,
    ) -> None:
        self._bus = bus
        self._registry = registry
        self._settings = settings
        self._files = files
        self._subscriptions: dict[uuid.UUID, Subscription] = {}
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        registry.listeners.append(self._on_connection_change)

    # -- serving: the replica that holds the connection -----------------------------------

    def _on_connection_change(self, machine_id: uuid.UUID) -> None:
        self._spawn(self.reconcile(machine_id))

    async def reconcile(self, machine_id: uuid.UUID) -> None:
        """Subscribe while this replica holds the machine's connection, unsubscribe after."""
        lock = self._locks.setdefault(machine_id, asyncio.Lock())
        async with lock:
            held = self._registry.is_connected(machine_id)
            subscription = self._subscriptions.get(machine_id)
            try:
                if held and subscription is None:
                    self._subscriptions[machine_id] = await self._bus.subscribe(
                        subjects.agent_request(str(machine_id)), self._on_request, QUEUE_GROUP
                    )
                elif not held and subscription is not None:
                    del self._subscriptions[machine_id]
                    with contextlib.suppress(Exception):
                        await subscription.unsubscribe()
            except NotConnected:
                log.warning("cannot announce a machine on NATS yet", machine=str(machine_id))

    async def resubscribe_all(self) -> None:
        """After NATS came (back): announce every connection held here."""
        for machine_id in self._registry.machine_ids():
            await self.reconcile(machine_id)

    async def _on_request(self, message: Msg) -> None:
        self._spawn(self._serve(message))

    async def _serve(self, message: Msg) -> None:
        if not message.reply:
            return
        machine_id = uuid.UUID(message.subject.rsplit(".", 1)[1])
        headers = message.headers or {}
        kind = headers.get(KIND, CALL)
        if not self._registry.is_connected(machine_id):
            await self._answer(message.reply, "absent")
            return
        if kind == "probe":
            await self._answer(message.reply, "here")
            return
        try:
            request = RequestMessage.model_validate_json(message.data)
        except ValidationError as error:
            await self._answer(message.reply, "error", _error("ConnectionLost", str(error)))
            return
        await self._answer(message.reply, "accepted")
        beats = asyncio.create_task(self._heartbeat(message.reply))
        stream: dict[str, str] = {}
        try:
            if kind == UPLOAD:
                response = await self._serve_upload(machine_id, request, headers.get(STREAM, ""))
            elif kind == DOWNLOAD:
                response, stream = await self._serve_download(machine_id, request)
            else:
                response = await self._registry.invoke(machine_id, request)
        except TransportError as error:
            await self._answer(message.reply, "error", _error(type(error).__name__, str(error)))
        except Exception as error:  # noqa: BLE001 - the relay failed: the caller may retry
            message_text = f"relaying a file stream failed: {error!r}"
            await self._answer(message.reply, "error", _error("ConnectionLost", message_text))
        else:
            data = response.model_dump_json().encode()
            await self._answer(message.reply, "response", data, stream)
        finally:
            beats.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beats

    async def _serve_upload(
        self, machine_id: uuid.UUID, request: RequestMessage, name: str
    ) -> ResponseMessage:
        """Fetch the caller's file, stream it to the agent, then make the call naming it."""
        connection = self._registry.get(machine_id)
        stream = (request.params or {}).get("stream")
        if connection is None or not name or not isinstance(stream, dict):
            raise MachineNotConnected(f"machine {machine_id} is not connected here")
        with _spool() as spooled:
            await self._files.fetch(name, spooled)
            await connection.send_stream(str(stream.get("id")), spooled)
        return await connection.invoke(request, self._settings.rpc_timeout_seconds)

    async def _serve_download(
        self, machine_id: uuid.UUID, request: RequestMessage
    ) -> tuple[ResponseMessage, dict[str, str]]:
        """Make the call, and store the stream the agent sent for the caller to fetch."""
        connection = self._registry.get(machine_id)
        if connection is None:
            raise MachineNotConnected(f"machine {machine_id} is not connected here")
        with _spool() as spooled:
            response = await connection.invoke_download(
                request, self._settings.rpc_timeout_seconds, spooled
            )
            if not spooled.exists():
                return response, {}
            name = f"download-{uuid7()}"
            await self._files.put(name, spooled)
        return response, {STREAM: name}

    async def _heartbeat(self, reply: str) -> None:
        while True:
            await asyncio.sleep(self._settings.heartbeat_seconds)
            await self._answer(reply, "heartbeat")

    async def _answer(
        self, reply: str, kind: str, data: bytes = b"", extra: dict[str, str] | None = None
    ) -> None:
        headers = {KIND: kind, REPLICA: self._settings.replica, **(extra or {})}
        with contextlib.suppress(NotConnected, Exception):
            await self._bus.publish(reply, data, headers=headers)

    # -- calling: any replica ---------------------------------------------------------------

    async def invoke(self, machine_id: uuid.UUID, request: RequestMessage) -> ResponseMessage:
        answer = await self._call(machine_id, request, CALL)
        return ResponseMessage.model_validate_json(answer.data)

    async def invoke_upload(
        self, machine_id: uuid.UUID, request: RequestMessage, source: Path
    ) -> ResponseMessage:
        """`upload_file` with the stream it names, through the replica holding the agent."""
        name = f"upload-{uuid7()}"
        try:
            await self._files.put(name, source)
        except NotConnected as error:
            raise MachineNotConnected(f"cannot reach other replicas: {error}") from error
        try:
            answer = await self._call(machine_id, request, UPLOAD, {STREAM: name})
        finally:
            await self._files.delete(name)
        return ResponseMessage.model_validate_json(answer.data)

    async def invoke_download(
        self, machine_id: uuid.UUID, request: RequestMessage, destination: Path
    ) -> ResponseMessage:
        """`download_file`, with the stream it announces fetched into `destination`."""
        answer = await self._call(machine_id, request, DOWNLOAD)
        response = ResponseMessage.model_validate_json(answer.data)
        name = (answer.headers or {}).get(STREAM)
        if name:
            try:
                await self._files.fetch(name, destination)
            except Exception as error:
                destination.unlink(missing_ok=True)
                raise ConnectionLost(f"fetching the downloaded stream failed: {error!r}") from error
            finally:
                await self._files.delete(name)
        return response

    async def _call(
        self,
        machine_id: uuid.UUID,
        request: RequestMessage,
        kind: str,
        extra: dict[str, str] | None = None,
    ) -> Msg:
        route_id = str(uuid7())
        inbox: asyncio.Queue[Msg] = asyncio.Queue()
        try:
            subscription = await self._bus.subscribe(subjects.agent_response(route_id), inbox.put)
        except NotConnected as error:
            raise MachineNotConnected(f"cannot reach other replicas: {error}") from error
        try:
            await self._bus.publish(
                subjects.agent_request(str(machine_id)),
                request.model_dump_json().encode(),
                reply=subjects.agent_response(route_id),
                headers={KIND: kind, REPLICA: self._settings.replica, **(extra or {})},
            )
            return await self._await_answer(machine_id, request, inbox, bounded=kind == CALL)
        except NotConnected as error:
            raise MachineNotConnected(f"cannot reach other replicas: {error}") from error
        finally:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _await_answer(
        self,
        machine_id: uuid.UUID,
        request: RequestMessage,
        inbox: asyncio.Queue[Msg],
        *,
        bounded: bool,
    ) -> Msg:
        s = self._settings
        loop = asyncio.get_running_loop()
        budget = s.rpc_timeout_seconds + s.peer_timeout_seconds if bounded else float("inf")
        deadline = loop.time() + budget
        holder = "the replica holding the connection"
        while True:
            wait = min(s.peer_timeout_seconds, deadline - loop.time())
            if wait <= 0:
                raise RpcTimeout(
                    f"machine {machine_id} did not answer {request.service}.{request.method} "
                    f"within {s.rpc_timeout_seconds:g} s (routed through {holder})"
                )
            try:
                message = await asyncio.wait_for(inbox.get(), wait)
            except TimeoutError:
                raise ConnectionLost(
                    f"{holder} went silent for {s.peer_timeout_seconds:g} s while calling "
                    f"machine {machine_id}"
                ) from None
            headers = message.headers or {}
            holder = headers.get(REPLICA, holder)
            kind = headers.get(KIND)
            if headers.get("Status") == "503" or kind == "absent":
                raise MachineNotConnected(f"machine {machine_id} is not connected to any replica")
            if kind == "response":
                return message
            if kind == "error":
                raise _remote_error(message.data)

    async def is_held_elsewhere(self, machine_id: uuid.UUID) -> bool:
        """Whether some replica holds the machine's connection right now (a quick probe)."""
        try:
            message = await self._bus.client().request(
                subjects.agent_request(str(machine_id)),
                b"",
                timeout=min(self._settings.peer_timeout_seconds, 2.0),
                headers={KIND: "probe", REPLICA: self._settings.replica},
            )
        except Exception:  # noqa: BLE001 - no responders, timeout, NATS down: not reachable
            return False
        return (message.headers or {}).get(KIND) == "here"

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for subscription in self._subscriptions.values():
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        self._subscriptions.clear()

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


@contextlib.contextmanager
def _spool() -> Iterator[Path]:
    """A temporary file path, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="cephalo-relay-") as directory:
        yield Path(directory) / "stream"


def _error(type_: str, message: str) -> bytes:
    return json.dumps({"type": type_, "message": message}).encode()


def _remote_error(data: bytes) -> TransportError:
    try:
        body = json.loads(data)
        error_class = _ERRORS.get(str(body.get("type")), ConnectionLost)
        return error_class(str(body.get("message")))
    except (ValueError, AttributeError):
        return ConnectionLost("the replica holding the connection sent an unreadable error")
