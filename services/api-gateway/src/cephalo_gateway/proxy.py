"""Forwarding one public request to the service that owns it, streaming both ways.

Nothing is buffered: the request body flows to the upstream as it arrives and the
response flows back as the upstream writes it, so package uploads keep memory flat.
Every request is authorized first (`authz.py`); the edge middleware audits it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response, StreamingResponse

from cephalo_common.errors import CephaloError, Unauthorized, Unavailable
from cephalo_common.ids import uuid7
from cephalo_common.logging import get_logger
from cephalo_gateway.authz import (
    MAX_INSPECTED_BODY,
    Authorizer,
    PayloadTooLarge,
    filter_items,
    list_filter,
)
from cephalo_gateway.domain.headers import has_body, request_headers, response_headers
from cephalo_gateway.domain.identity import Principal
from cephalo_gateway.domain.routing import Route, is_package_transfer, resolve_route
from cephalo_gateway.errors import ClientDisconnected
from cephalo_gateway.security import Security
from cephalo_gateway.upstream.client import Answer, UpstreamClient
from cephalo_gateway.upstream.metrics import GatewayMetrics
from cephalo_gateway.upstream.spaces import SpaceResolver

log = get_logger(__name__)
MAX_FILTERED_BODY = 16 * 1024 * 1024


@dataclass
class Gateway:
    """What the lifespan holds for forwarding (in `runtime.extras["gateway"]`)."""

    upstreams: UpstreamClient
    spaces: SpaceResolver
    metrics: GatewayMetrics
    sessionmaker: async_sessionmaker[AsyncSession]
    security: Security
    authorizer: Authorizer


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


def principal_of(request: Request) -> Principal | None:
    principal: Principal | None = getattr(request.state, "principal", None)
    return principal


async def _inspected_body(request: Request) -> bytes:
    """A body the gateway must read to authorize (deploy X to Y), bounded."""
    received = bytearray()
    try:
        async for chunk in request.stream():
            received += chunk
            if len(received) > MAX_INSPECTED_BODY:
                raise PayloadTooLarge(
                    f"this request body may be at most {MAX_INSPECTED_BODY} bytes"
                )
    except ClientDisconnect as error:
        raise ClientDisconnected("the client disconnected before sending the whole body") from error
    return bytes(received)


async def _single(body: bytes) -> AsyncIterator[bytes]:
    yield body


def _body_header(name: str) -> bool:
    return name.lower() in ("content-length", "content-type", "content-encoding")


def signed_download_of(request: Request) -> bool:
    """The edge let this request in on a signed download link (`domain/signed_links.py`)."""
    return bool(getattr(request.state, "signed_download", False))


async def _authorized_content(
    request: Request,
    gateway: Gateway,
    principal: Principal,
    route: Route,
    space_id: uuid.UUID | None,
) -> AsyncIterable[bytes] | None:
    """Check the caller's permission; the body to forward (read first when it names
    the objects the permission is checked against)."""
    requirement = gateway.authorizer.requirement(request.method, route.path)
    incoming = _decoded(request.headers.raw)
    content: AsyncIterable[bytes] | None = request.stream() if has_body(incoming) else None
    body = None
    if requirement is not None and requirement.body and content is not None:
        body = await _inspected_body(request)
        content = _single(body)
    await gateway.authorizer.check(principal, requirement, space_id, body)
    return content


async def forward(
    request: Request, gateway: Gateway, *, route: Route | None = None, octopus: bool = False
) -> Response:
    """Authorize, then forward; `route` overrides the routing table (Octopus paths)."""
    route = route or resolve_route(raw_path_of(request))
    request_id = request_id_of(request)
    principal = principal_of(request)
    signed = principal is None and signed_download_of(request)
    if principal is None and not signed:
        raise Unauthorized("sign in or send an API key")
    space_id = route.space_id
    if route.space is not None and space_id is None:
        space_id = await gateway.spaces.space_id(route.space, request_id=request_id)
    request.state.audit_upstream = route.upstream.value
    request.state.audit_space_id = space_id
    incoming = _decoded(request.headers.raw)
    if principal is None:
        incoming = [(name, value) for name, value in incoming if not _body_header(name)]
        content, identity = None, gateway.security.signed_link_header(route.upstream.value)
    else:
        content = await _authorized_content(request, gateway, principal, route, space_id)
        identity = gateway.security.identity_header(principal, route.upstream.value)
    headers = request_headers(
        incoming,
        request_id=request_id,
        client_host=getattr(request.state, "client_ip", None)
        or (request.client.host if request.client else None),
        scheme=request.url.scheme,
        host=request.headers.get("host"),
    )
    headers.append(identity)
    upstreams = gateway.upstreams
    opener = (
        upstreams.open_transfer if is_package_transfer(route, request.method) else upstreams.open
    )
    try:
        upstream: Answer = await opener(
            route.upstream,
            request.method,
            route.upstream_path(space_id),
            query=request.url.query,
            headers=headers,
            content=content,
        )
    except ClientDisconnect as error:
        raise ClientDisconnected("the client disconnected before sending the whole body") from error
    except CephaloError as error:
        gateway.metrics.upstream_responses.labels(route.upstream.value, error.type_slug).inc()
        raise
    gateway.metrics.upstream_responses.labels(route.upstream.value, str(upstream.status_code)).inc()
    base_url = gateway.upstreams.urls[route.upstream]
    collection = list_filter(principal, request.method, route.path) if principal else None
    if principal is not None and collection is not None and upstream.status_code == 200:
        return await _filtered(upstream, base_url, principal, collection, space_id)
    if octopus and upstream.status_code >= 400:
        return await _octopus_error(upstream)
    return _streamed(upstream, base_url)


async def _read_json(upstream: Answer) -> Any:
    try:
        raw = bytearray()
        async for chunk in upstream.aiter_bytes():
            raw += chunk
            if len(raw) > MAX_FILTERED_BODY:
                raise Unavailable("the list is too large to filter; narrow it with take")
        return json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None
    finally:
        await upstream.aclose()


async def _filtered(
    upstream: Answer,
    base_url: str,
    principal: Principal,
    collection: str,
    space_id: uuid.UUID | None,
) -> Response:
    """A list with only what this user may see (items outside their scope are dropped)."""
    body = await _read_json(upstream)
    kept = {
        name: value
        for name, value in response_headers(
            _decoded(upstream.headers.raw), upstream_base_url=base_url
        )
        if name not in ("content-length", "content-encoding")
    }
    return JSONResponse(
        filter_items(principal, collection, space_id, body), status_code=200, headers=kept
    )


async def _octopus_error(upstream: Answer) -> Response:
    """An upstream problem as Octopus clients read errors: `{ErrorMessage, Errors[]}`."""
    body = await _read_json(upstream)
    message = "the request failed"
    errors: list[str] = []
    if isinstance(body, dict):
        message = str(body.get("detail") or body.get("title") or message)
        errors = [
            f"{e.get('field', '')}: {e.get('message', '')}".strip(": ")
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ]
    return JSONResponse(
        {"ErrorMessage": message, "Errors": errors or [message]}, status_code=upstream.status_code
    )


def _streamed(upstream: Answer, upstream_base_url: str) -> StreamingResponse:
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
