"""Polling connections held by this process, and the registry that routes calls to them.

A `PollingConnection` is one agent's live WebSocket. We send `RequestMessage` frames and
read `ResponseMessage` frames, matched by id to a future per call. When the socket drops,
every pending call fails at once with `ConnectionLost` instead of waiting out its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

from pydantic import ValidationError
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from cephalo_agent_gateway.domain.transport import ConnectionLost, MachineNotConnected, RpcTimeout
from cephalo_common.agent_protocol import RequestMessage, ResponseMessage
from cephalo_common.logging import get_logger

log = get_logger(__name__)


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

    async def close(self, code: int, reason: str) -> None:
        self._fail_pending(f"connection to {self.machine_name} closed by the server ({reason})")
        with contextlib.suppress(Exception):
            await self._websocket.close(code, reason)

    def _on_frame(self, frame: str | bytes) -> None:
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

    def _fail_pending(self, reason: str) -> None:
        self._closed_reason = self._closed_reason or reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(ConnectionLost(reason))


class ConnectionRegistry:
    """machine id → its one live polling connection here; a `Transport` for script runs."""

    def __init__(self, *, rpc_timeout_seconds: float) -> None:
        self._rpc_timeout = rpc_timeout_seconds
        self._connections: dict[uuid.UUID, PollingConnection] = {}
        self._waiters: dict[uuid.UUID, set[asyncio.Future[None]]] = {}

    def attach(self, connection: PollingConnection) -> PollingConnection | None:
        """Make `connection` the machine's current one; returns the one it replaces."""
        replaced = self._connections.get(connection.machine_id)
        self._connections[connection.machine_id] = connection
        for waiter in self._waiters.pop(connection.machine_id, set()):
            if not waiter.done():
                waiter.set_result(None)
        return replaced if replaced is not connection else None

    def detach(self, connection: PollingConnection) -> None:
        if self._connections.get(connection.machine_id) is connection:
            del self._connections[connection.machine_id]

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
            await connection.close(1008, reason)

    async def close_all(self) -> None:
        connections = list(self._connections.values())
        self._connections.clear()
        await asyncio.gather(
            *(c.close(1001, "the gateway is shutting down") for c in connections),
            return_exceptions=True,
        )
