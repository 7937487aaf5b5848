"""The one `Transport` the gateway uses: it picks the carrier per machine.

- listening machine → dial it over HTTPS (`ListeningTransport`);
- polling machine connected here → its WebSocket (`ConnectionRegistry`);
- polling machine connected to another replica → route over NATS (`NatsRoute`), with
  file streams through the replicas' object store (`FileRelay`).

The machine's mode, URI and certificate come from the table, cached for a few seconds
(`forget` drops an entry at once when the machine changes or is deleted).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_agent_gateway.domain.transport import MachineNotConnected
from cephalo_agent_gateway.transport.listening import Endpoint, ListeningTransport
from cephalo_agent_gateway.transport.polling import ConnectionRegistry
from cephalo_agent_gateway.transport.routing import NatsRoute
from cephalo_common.agent_protocol import RequestMessage, ResponseMessage


@dataclass(frozen=True)
class MachineRecord:
    mode: str
    endpoint: Endpoint | None  # listening machines only


class MachineDirectory:
    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], *, ttl_seconds: float = 5.0
    ) -> None:
        self._sessionmaker = sessionmaker
        self._ttl = ttl_seconds
        self._cache: dict[uuid.UUID, tuple[float, MachineRecord | None]] = {}

    async def find(self, machine_id: uuid.UUID) -> MachineRecord | None:
        now = asyncio.get_running_loop().time()
        cached = self._cache.get(machine_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        async with self._sessionmaker() as session:
            machine = await Repositories(session).machines.find(machine_id)
        record = None
        if machine is not None:
            endpoint = None
            if machine.mode == "listening" and machine.uri:
                endpoint = Endpoint(
                    machine.id,
                    machine.name,
                    machine.uri,
                    machine.certificate_pem,
                    machine.thumbprint,
                )
            record = MachineRecord(machine.mode, endpoint)
        self._cache[machine_id] = (now, record)
        return record

    def forget(self, machine_id: uuid.UUID) -> None:
        self._cache.pop(machine_id, None)


class AgentTransport:
    """`Transport` over every carrier; see the module docstring."""

    def __init__(
        self,
        directory: MachineDirectory,
        polling: ConnectionRegistry,
        route: NatsRoute,
        listening: ListeningTransport,
        *,
        probe_seconds: float,
    ) -> None:
        self.directory = directory
        self.polling = polling
        self.route = route
        self.listening = listening
        self._probe_seconds = probe_seconds

    def is_connected(self, machine_id: uuid.UUID) -> bool:
        """What this replica knows without asking: a local socket or a recent HTTPS call."""
        return self.polling.is_connected(machine_id) or self.listening.is_reachable(machine_id)

    async def wait_until_connected(self, machine_id: uuid.UUID, timeout: float) -> bool:
        if self.polling.is_connected(machine_id):
            return True
        record = await self.directory.find(machine_id)
        if record is None:
            return False
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if await self._reachable(machine_id, record):
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            pause = min(remaining, self._probe_seconds)
            if record.endpoint is None:
                await self.polling.wait_until_connected(machine_id, pause)
            else:
                await asyncio.sleep(pause)

    async def invoke(self, machine_id: uuid.UUID, request: RequestMessage) -> ResponseMessage:
        """A polling connection held here is used without asking the table: only a polling
        machine's certificate opens one, and the per-call lookup was most of a call's cost."""
        if self.polling.is_connected(machine_id):
            return await self.polling.invoke(machine_id, request)
        record = await self.directory.find(machine_id)
        if record is None:
            raise MachineNotConnected(f"machine {machine_id} is not registered")
        if record.endpoint is not None:
            return await self.listening.invoke(record.endpoint, request)
        if self.polling.is_connected(machine_id):
            return await self.polling.invoke(machine_id, request)
        return await self.route.invoke(machine_id, request)

    async def invoke_upload(
        self, machine_id: uuid.UUID, request: RequestMessage, source: Path
    ) -> ResponseMessage:
        """`upload_file`, preceded by the bytes of `source` as the stream it names."""
        record = await self._record(machine_id)
        stream_id = str(((request.params or {}).get("stream") or {}).get("id"))
        if record.endpoint is not None:
            await self.listening.send_stream(record.endpoint, stream_id, source)
            return await self.listening.invoke(record.endpoint, request)
        connection = self.polling.get(machine_id)
        if connection is None:
            return await self.route.invoke_upload(machine_id, request, source)
        await connection.send_stream(stream_id, source)
        return await connection.invoke(request, self.polling.rpc_timeout_seconds)

    async def invoke_download(
        self, machine_id: uuid.UUID, request: RequestMessage, destination: Path
    ) -> ResponseMessage:
        """`download_file`, with the stream it announces written to `destination`."""
        record = await self._record(machine_id)
        if record.endpoint is not None:
            response = await self.listening.invoke(record.endpoint, request)
            stream = (response.result or {}).get("stream")
            if isinstance(stream, dict):
                await self.listening.fetch_stream(record.endpoint, str(stream["id"]), destination)
            return response
        connection = self.polling.get(machine_id)
        if connection is None:
            return await self.route.invoke_download(machine_id, request, destination)
        return await connection.invoke_download(
            request, self.polling.rpc_timeout_seconds, destination
        )

    async def _record(self, machine_id: uuid.UUID) -> MachineRecord:
        record = await self.directory.find(machine_id)
        if record is None:
            raise MachineNotConnected(f"machine {machine_id} is not registered")
        return record

    async def _reachable(self, machine_id: uuid.UUID, record: MachineRecord) -> bool:
        if record.endpoint is not None:
            return self.listening.is_reachable(machine_id) or await self.listening.probe(
                record.endpoint
            )
        if self.polling.is_connected(machine_id):
            return True
        return await self.route.is_held_elsewhere(machine_id)
