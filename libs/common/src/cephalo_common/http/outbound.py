"""An httpx transport that dials only addresses the outbound guard admits.

The guard runs at connect time on the addresses it resolved itself and the socket goes to one of
those, so a host name re-pointed after the API accepted it (DNS rebinding) cannot reach an
internal address; TLS still names the original host (SNI, certificate checks).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

from cephalo_common.urls import Destination, OutboundPolicy, UrlRefused, resolve


class GuardedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, policy: OutboundPolicy, inner: httpcore.AsyncNetworkBackend) -> None:
        self._policy = policy
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            destination = await resolve(Destination("https", host, port), self._policy)
        except UrlRefused as refused:
            raise httpcore.ConnectError(
                f"refused by the outbound guard: {refused.detail}"
            ) from None
        failure: Exception | None = None
        for address in destination.addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the outbound guard dials TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport(policy: OutboundPolicy, **options: Any) -> httpx.AsyncHTTPTransport:
    """`httpx.AsyncHTTPTransport(**options)` whose every connection passes the guard.

    httpx takes no network backend, so the pool's is wrapped after construction."""
    transport = httpx.AsyncHTTPTransport(**options)
    pool = transport._pool
    pool._network_backend = GuardedBackend(policy, pool._network_backend)
    return transport
