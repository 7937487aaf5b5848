"""Forwarding one public request to the service that owns it, streaming both ways.

Nothing is buffered: the request body flows to the upstream as it arrives and the
response flows back as the upstream writes it, so package uploads keep memory flat.
State-changing requests are audited once the upstream has answered (or failed).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import httpx
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse

from cephalo_common.db.session import unit_of_work
from cephalo_common.errors import CephaloError
from cephalo_common.ids import uuid7
from cephalo_common.logging import get_logger
from cephalo_gateway.db.repositories import Repositories
from cephalo_gateway.domain import audit
from cephalo_gateway.domain.headers import has_body, request_headers, response_headers
from cephalo_gateway.domain.routing import Route, resolve_route
from cephalo_gateway.errors import ClientDisconnected
from cephalo_gateway.upstream.client import UpstreamClient
from cephalo_gateway.upstream.metrics import GatewayMetrics
from cephalo_gateway.upstream.spaces import SpaceResolver

log = get_logger(__name__)


@dataclass
class Gateway:
    """What the lifespan holds for forwarding (in `runtime.extras["gateway"]`)."""

    upstreams: UpstreamClient
    spaces: SpaceResolver
    metrics: GatewayMetrics
    sessionmaker: async_sessionmaker[AsyncSession]


def request_id_of(request: Request) -> str:
    """The id the request-id middleware gave this request, propagated upstream."""
    return str(getattr(request.state, "request_id", None) or uuid7())


def raw_path_of(request: Request) -> str:
    """The path as the client encoded it, so `%2F` inside a name is not taken for `/`."""
    raw = request.scope.get("raw_path")
    if not raw:
        return quote(request.url.path)
    return bytes(raw).split(b"?", 1)[0].decode("latin-1")


def _decoded(headers: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]


async def forward(request: Request, gateway: Gateway, *, actor: str) -> StreamingResponse:
    route = resolve_route(raw_path_of(request))
    request_id = request_id_of(request)
    space_id = route.space_id
    if route.needs_space_lookup:
        assert route.space is not None
        space_id = await gateway.spaces.space_id(route.space, request_id=request_id)
    incoming = _decoded(request.headers.raw)
    try:
        upstream = await gateway.upstreams.open(
            route.upstream,
            request.method,
            route.upstream_path(space_id),
            query=request.url.query,
            headers=request_headers(
                incoming,
                request_id=request_id,
                client_host=request.client.host if request.client else None,
                scheme=request.url.scheme,
                host=request.headers.get("host"),
            ),
            content=request.stream() if has_body(incoming) else None,
        )
    except ClientDisconnect as error:
        raise ClientDisconnected("the client disconnected before sending the whole body") from error
    except CephaloError as error:
        gateway.metrics.upstream_responses.labels(route.upstream.value, error.type_slug).inc()
        await _audit(gateway, request, route, space_id, error.status_code, actor, request_id)
        raise
    gateway.metrics.upstream_responses.labels(route.upstream.value, str(upstream.status_code)).inc()
    try:
        await _audit(gateway, request, route, space_id, upstream.status_code, actor, request_id)
    except BaseException:
        await upstream.aclose()
        raise
    return _streamed(upstream, gateway.upstreams.urls[route.upstream])


async def _audit(
    gateway: Gateway,
    request: Request,
    route: Route,
    space_id: uuid.UUID | None,
    status: int,
    actor: str,
    request_id: str,
) -> None:
    """Record a state-changing request; a failed write is logged and counted, not raised,
    because the upstream has already acted and the client must learn its answer."""
    if not audit.is_state_changing(request.method):
        return
    entry = audit.AuditEntry(
        method=request.method,
        path=route.path,
        status=status,
        space_id=space_id,
        actor=actor,
        request_id=request_id,
        upstream=route.upstream.value,
    )
    try:
        async with unit_of_work(gateway.sessionmaker) as session:
            await audit.record(Repositories(session), entry)
    except Exception:
        gateway.metrics.audit_failures.inc()
        log.exception("audit write failed", method=entry.method, path=entry.path)


def _streamed(upstream: httpx.Response, upstream_base_url: str) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    response = StreamingResponse(
        body(), status_code=upstream.status_code, background=BackgroundTask(upstream.aclose)
    )
    response.raw_headers = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in response_headers(
            _decoded(upstream.headers.raw), upstream_base_url=upstream_base_url
        )
    ]
    return response
