"""A fault-injecting TCP proxy for tests, after Halibut's `Octopus.TestPortForwarder`.

It forwards bytes between a client and a server on loopback, and can break every connection
it carries at once (`sever`), refuse new ones (`refuse_new`), or stall them (`pause`). TLS
runs end to end through it, so it cannot see RPC boundaries: a test that wants "kill the
connection on the next response of method M" severs from a hook in the agent's service,
after the agent has done the work and before the response is written (as Tentacle's
`ResponseMessageTcpKiller` does).

Bounded: loopback only, at most `max_connections` pairs, 64 KiB reads with back-pressure.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from dataclasses import dataclass, field

_CHUNK = 64 * 1024


@dataclass(eq=False)
class _Pair:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    pumps: list[asyncio.Task[None]] = field(default_factory=list)

    def abort(self) -> None:
        for writer in (self.client, self.server):
            writer.transport.abort()


class FaultProxy:
    """`async with FaultProxy(target_port) as proxy:` → connect to `proxy.port` instead."""

    def __init__(
        self, target_port: int, *, target_host: str = "127.0.0.1", max_connections: int = 64
    ) -> None:
        if not ipaddress.ip_address(target_host).is_loopback:
            raise ValueError("the fault proxy only forwards to loopback addresses")
        self.target_host = target_host
        self.target_port = target_port
        self.max_connections = max_connections
        self.connections_made = 0
        self.severed = 0
        self.refuse_new = False
        self._running = asyncio.Event()
        self._running.set()
        self._pairs: set[_Pair] = set()
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        self.sever()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def sever(self) -> int:
        """Abort every connection now, both sides (RST); returns how many."""
        pairs = list(self._pairs)
        for pair in pairs:
            pair.abort()
        self.severed += len(pairs)
        return len(pairs)

    def pause(self) -> None:
        """Stop forwarding (bytes wait in the kernel buffers): a stalled network."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def open_connections(self) -> int:
        return len(self._pairs)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refuse_new or len(self._pairs) >= self.max_connections:
            writer.transport.abort()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(self.target_host, self.target_port), 5
            )
        except (OSError, TimeoutError):
            writer.transport.abort()
            return
        self.connections_made += 1
        pair = _Pair(writer, upstream_writer)
        self._pairs.add(pair)
        pair.pumps = [
            asyncio.create_task(self._pump(reader, upstream_writer)),
            asyncio.create_task(self._pump(upstream_reader, writer)),
        ]
        try:
            await asyncio.wait(pair.pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            pair.abort()
            for pump in pair.pumps:
                pump.cancel()
            await asyncio.gather(*pair.pumps, return_exceptions=True)
            self._pairs.discard(pair)

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await source.read(_CHUNK):
                await self._running.wait()
                sink.write(chunk)
                await sink.drain()
