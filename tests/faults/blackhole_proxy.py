"""A loopback proxy that can blackhole its link: connections stay open, every byte is dropped.

What a silently failing network (a dead route, a firewall that drops) looks like to both
ends: no RST, no FIN, nothing arrives. New connections are accepted and blackholed too, so a
reconnecting agent gets a TCP connection and never a TLS handshake.
"""

from __future__ import annotations

import asyncio
import contextlib

from cephalo_agent_gateway.testing.fault_proxy import FaultProxy

_CHUNK = 64 * 1024


class BlackholeProxy(FaultProxy):
    blackholed = False

    def blackhole(self) -> None:
        self.blackholed = True

    def restore(self) -> None:
        """Forward again; connections that lost bytes are cut, so both ends start afresh."""
        self.blackholed = False
        self.sever()

    async def _pump(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await source.read(_CHUNK):
                if self.blackholed:
                    continue
                sink.write(chunk)
                await sink.drain()
