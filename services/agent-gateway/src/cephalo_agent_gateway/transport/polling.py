"""Polling connections held by this process, and the registry that routes calls to them.

A `PollingConnection` is one agent's live WebSocket. We send `RequestMessage` frames and
read `ResponseMessage` frames, matched by id to a future per call. When the socket drops,
every pending call fails at once with `ConnectionLost` instead of waiting out its timeout.

File streams travel as binary frames `<16-byte stream id><chunk>` (an empty chunk ends the
stream): sent before the `upload_file` request that names them, received before the
`download_file` response that announces them (spooled to a temporary file meanwhile, and
accepted only while a download is in flight).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from pydantic import ValidationError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from cephalo_agent_gateway.domain.transport import ConnectionLost, MachineNotConnected, RpcTimeout
from cephalo_common.agent_protocol import RequestMessage, ResponseMessage
from cephalo_common.logging import get_logger

log = get_logger(__name__)
STREAM_ID_BYTES = 16
STREAM_CHUNK_BYTES = 256 * 1024


class PollingConnection:
    def __init__(
        self, machine_id: uuid.UUID, machine_name: str, websocket: ServerConnection
    ) -> None:
        self.machine_id = machine_id
        self.machine_name = machine_name
        self._websocket = websocket
        self._pending: dict[str, asyncio.Future[ResponseMessage]] = {}
        self._send_lock = asyncio.Lock()
        self._closed_reason: str | None = None
        self._downloads = 0
        self._incoming: dict[str, tuple[BinaryIO, Path]] = {}
        self._received: dict[str, Path] = {}

    @property
    def is_open(self) -> bool:
        return self._closed_reason is None

    async def invoke(self, request: RequestMessage, timeout: float) -> ResponseMessage:
        if self._closed_reason is not None:
            raise ConnectionLost(self._closed_reason)
        future: asyncio.Future[ResponseMessage] = asyncio.get_running_loop().create_future()
        self._pending[request.id] = future
        try:
            async with self._send_lock:
                await self._websocket.send(request.model_dump_json())
            return await asyncio.wait_for(future, timeout)
        except ConnectionClosed as error:
            raise ConnectionLost(f"connection to {self.machine_name} closed: {error}") from error
        except TimeoutError as error:
            raise RpcTimeout(
                f"{self.machine_name} did not answer {request.service}.{request.method} "
                f"within {timeout:g} s"
            ) from error
        finally:
            self._pending.pop(request.id, None)

    async def send_stream(self, stream_id: str, source: Path) -> None:
        """The bytes of `source` as binary frames, before the request that names the stream."""
        if self._closed_reason is not None:
            raise ConnectionLost(self._closed_reason)
        key = bytes.fromhex(stream_id)
        try:
            with source.open("rb") as handle:
                while chunk := await asyncio.to_thread(handle.read, STREAM_CHUNK_BYTES):
                    async with self._send_lock:
                        await self._websocket.send(key + chunk)
            async with self._send_lock:
                await self._websocket.send(key)
        except ConnectionClosed as error:
            raise ConnectionLost(f"connection to {self.machine_name} closed: {error}") from error

    async def invoke_download(
        self, request: RequestMessage, timeout: float, destination: Path
    ) -> ResponseMessage:
        """`download_file`: the response announces a stream that arrived just before it."""
        self._downloads += 1
        try:
            response = await self.invoke(request, timeout)
        finally:
            self._downloads -= 1
        stream = (response.result or {}).get("stream")
        if isinstance(stream, dict):
            received = self._received.pop(str(stream.get("id")), None)
            if received is None:
                raise ConnectionLost(f"{self.machine_name} announced a stream it did not send")
            os.replace(received, destination)
        return response

    async def serve(self) -> None:
        """Read responses until the socket closes, then fail whatever is still pending."""
        reason = "the connection closed"
        try:
            async for frame in self._websocket:
                self._on_frame(frame)
        except ConnectionClosed as error:
            reason = f"the connection dropped: {error}"
        finally:
            self._fail_pending(f"connection to {self.machine_name} lost ({reason})")
            self._drop_streams()

    async def close(self, code: int, reason: str) -> None:
        self._fail_pending(f"connection to {self.machine_name} closed by the server ({reason})")
        with contextlib.suppress(Exception):
            await self._websocket.close(code, reason)

    def _on_frame(self, frame: str | bytes) -> None:
        if isinstance(frame, bytes):
            self._on_stream_frame(frame)
            return
        try:
            response = ResponseMessage.model_validate_json(frame)
        except ValidationError as error:
            log.warning(
                "ignored a frame that is not a response",
                machine=self.machine_name,
                error=str(error),
            )
            return
        future = self._pending.get(response.id)
        if future is None or future.done():
            log.info(
                "ignored a late or unknown response", machine=self.machine_name, id=response.id
            )
            return
        future.set_result(response)

    def _on_stream_frame(self, frame: bytes) -> None:
        key, chunk = frame[:STREAM_ID_BYTES].hex(), frame[STREAM_ID_BYTES:]
        entry = self._incoming.get(key)
        if entry is None:
            if not self._downloads or len(frame) < STREAM_ID_BYTES:
                log.warning("ignored an unexpected stream frame", machine=self.machine_name)
                return
            fd, name = tempfile.mkstemp(prefix="cephalo-download-")
            entry = self._incoming[key] = (os.fdopen(fd, "wb"), Path(name))
        handle, path = entry
        if chunk:
            handle.write(chunk)
            return
        handle.close()
        del self._incoming[key]
        self._received[key] = path

    def _drop_streams(self) -> None:
        for handle, path in self._incoming.values():
            handle.close()
            path.unlink(missing_ok=True)
        for path in self._received.values():
            path.unlink(missing_ok=True)
        self._incoming.clear()
        self._received.clear()

    def _fail_pending(self, reason: str) -> None:
        self._closed_reason = self._closed_reason or reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(reason))


class ConnectionRegistry:
    """machine id → its one live polling connection here (the local part of the transport)."""

    def __init__(self, *, rpc_timeout_seconds: float) -> None:
        self.rpc_timeout_seconds = rpc_timeout_seconds
        self._rpc_timeout = rpc_timeout_seconds
        self._connections: dict[uuid.UUID, PollingConnection] = {}
        self._waiters: dict[uuid.UUID, set[asyncio.Future[None]]] = {}
        # Told the machine id whenever a machine's connection here comes or goes.
        self.listeners: list[Callable[[uuid.UUID], None]] = []

    def attach(self, connection: PollingConnection) -> PollingConnection | None:
        """Make `connection` the machine's current one; returns the one it replaces."""
        replaced = self._connections.get(connection.machine_id)
        self._connections[connection.machine_id] = connection
        for waiter in self._waiters.pop(connection.machine_id, set()):
            if not waiter.done():
                waiter.set_result(None)
        self._notify(connection.machine_id)
        return replaced if replaced is not connection else None

    def detach(self, connection: PollingConnection) -> None:
        if self._connections.get(connection.machine_id) is connection:
            del self._connections[connection.machine_id]
            self._notify(connection.machine_id)

    def machine_ids(self) -> list[uuid.UUID]:
        return list(self._connections)

    def _notify(self, machine_id: uuid.UUID) -> None:
        for listener in self.listeners:
            listener(machine_id)

    def get(self, machine_id: uuid.UUID) -> PollingConnection | None:
        connection = self._connections.get(machine_id)
        return connection if connection is not None and connection.is_open else None

    def is_connected(self, machine_id: uuid.UUID) -> bool:
        return self.get(machine_id) is not None

    async def wait_until_connected(self, machine_id: uuid.UUID, timeout: float) -> bool:
        if self.is_connected(machine_id):
            return True
        if timeout <= 0:
            return False
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(machine_id, set()).add(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except TimeoutError:
            return self.is_connected(machine_id)
        finally:
            waiters = self._waiters.get(machine_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[machine_id]
        return self.is_connected(machine_id)

    async def invoke(self, machine_id: uuid.UUID, request: RequestMessage) -> ResponseMessage:
        connection = self.get(machine_id)
        if connection is None:
            raise MachineNotConnected(f"machine {machine_id} is not connected to this gateway")
        return await connection.invoke(request, self._rpc_timeout)

    async def disconnect(self, machine_id: uuid.UUID, reason: str) -> None:
        """Close the machine's connection (it was deleted or disabled)."""
        connection = self._connections.pop(machine_id, None)
        if connection is not None:
            self._notify(machine_id)
            await connection.close(1008, reason)

    async def close_all(self) -> None:
        connections = list(self._connections.values())
        self._connections.clear()
        for connection in connections:
            self._notify(connection.machine_id)
        await asyncio.gather(
            *(c.close(1001, "the gateway is shutting down") for c in connections),
            return_exceptions=True,
        )
