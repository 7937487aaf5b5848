"""One pooled HTTP client for every upstream, with failures turned into problems."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Protocol

import httpcore
import httpx

from cephalo_common.errors import Unavailable
from cephalo_common.logging import get_logger
from cephalo_gateway.domain.headers import Header
from cephalo_gateway.domain.routing import Upstream
from cephalo_gateway.errors import GatewayTimeout
from cephalo_gateway.upstream import streaming

log = get_logger(__name__)
OPENAPI_TIMEOUT_SECONDS = 5.0
UPSTREAM_READ_BYTES = 256 * 1024
"""One read from an upstream socket: as much as uvloop hands over at once (256,000 bytes).
httpcore's 64 KiB made it split each chunk in four and pay h11 and a cancel scope for every
piece: the gateway's CPU per GiB proxied fell by about a third (docs/benchmarks.md)."""
httpcore.AsyncHTTP11Connection.READ_NUM_BYTES = UPSTREAM_READ_BYTES


class Answer(Protocol):
    """What `forward` reads from an upstream: an `httpx.Response` or a
    `streaming.StreamedAnswer`."""

    @property
    def status_code(self) -> int: ...

    @property
    def headers(self) -> httpx.Headers: ...

    def aiter_raw(self) -> AsyncIterator[bytes]: ...

    def aiter_bytes(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class UpstreamClient:
    """Owned by the lifespan (`aclose()` at shutdown); never follows proxies from the
    environment, since internal calls must not leave through an HTTP proxy."""

    def __init__(
        self,
        urls: Mapping[Upstream, str],
        *,
        timeout_seconds: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.urls = {upstream: url.rstrip("/") for upstream, url in urls.items()}
        self.timeout_seconds = timeout_seconds
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            trust_env=False,
            transport=transport,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    @contextlib.contextmanager
    def _translated(self, upstream: Upstream) -> Iterator[None]:
        """Timeouts are 504s; anything else on the wire means the service is unavailable."""
        try:
            yield
        except httpx.TimeoutException as error:
            log.warning("upstream timed out", upstream=upstream.value, error=repr(error))
            raise GatewayTimeout(
                f"{upstream.value} did not answer within {self.timeout_seconds:g} seconds"
            ) from error
        except httpx.TransportError as error:
            log.warning("upstream unavailable", upstream=upstream.value, error=repr(error))
            raise Unavailable(f"{upstream.value} is unavailable") from error

    async def open(
        self,
        upstream: Upstream,
        method: str,
        path: str,
        *,
        query: str = "",
        headers: Sequence[Header] = (),
        content: AsyncIterable[bytes] | None = None,
    ) -> httpx.Response:
        """Send a request, streaming `content`; the caller reads and closes the response."""
        url = self.urls[upstream] + path + (f"?{query}" if query else "")
        raw_headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        request = self.http.build_request(method, url, headers=raw_headers, content=content)
        with self._translated(upstream):
            return await self.http.send(request, stream=True)

    async def open_transfer(
        self,
        upstream: Upstream,
        method: str,
        path: str,
        *,
        query: str = "",
        headers: Sequence[Header] = (),
        content: AsyncIterable[bytes] | None = None,
    ) -> Answer:
        """`open` for a package push or download, through the lean client when it can."""
        base = self.urls[upstream]
        if not streaming.supports(base):
            return await self.open(
                upstream, method, path, query=query, headers=headers, content=content
            )
        return await streaming.exchange(
            base,
            upstream.value,
            method,
            path + (f"?{query}" if query else ""),
            headers=headers,
            content=content,
            timeout=self.timeout_seconds,
        )

    async def get_json(
        self, upstream: Upstream, path: str, *, headers: Sequence[Header] = ()
    ) -> tuple[int, Any]:
        """A small JSON read (status, body); the body is None when it is not JSON."""
        with self._translated(upstream):
            response = await self.http.get(self.urls[upstream] + path, headers=list(headers))
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    async def send_json(
        self,
        upstream: Upstream,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Sequence[Header] = (),
    ) -> tuple[int, Any]:
        """A small JSON call (status, body) for calls the gateway makes on a user's behalf."""
        with self._translated(upstream):
            response = await self.http.request(
                method,
                self.urls[upstream] + path,
                json=body,
                params=params,
                headers=list(headers),
            )
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    async def openapi_documents(self) -> dict[str, dict[str, Any] | None]:
        """Each service's `/openapi.json`, or None for one that does not answer in time."""

        async def fetch(upstream: Upstream) -> dict[str, Any] | None:
            try:
                response = await self.http.get(
                    self.urls[upstream] + "/openapi.json", timeout=OPENAPI_TIMEOUT_SECONDS
                )
                document = response.json() if response.status_code == 200 else None
            except (httpx.HTTPError, ValueError) as error:
                log.info("no OpenAPI document", upstream=upstream.value, error=repr(error))
                return None
            return document if isinstance(document, dict) else None

        found = await asyncio.gather(*(fetch(upstream) for upstream in Upstream))
        return {
            upstream.value: document for upstream, document in zip(Upstream, found, strict=True)
        }
