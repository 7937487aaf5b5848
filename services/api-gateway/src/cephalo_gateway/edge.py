"""The gateway's edge: security headers, rate limits, authentication, CSRF and the audit log.

One pure ASGI middleware in front of every route (inside request-id and metrics, so refusals
carry a request id and are counted). Bodies are never buffered here, so streaming is kept:
a mutating request's body is only copied (bounded) as it streams past, for the audit entry.
Each state-changing request, and each refused credential or permission, is written to the
audit log once, just before its status line goes to the client.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import quote

from cephalo_common.db.session import unit_of_work
from cephalo_common.http.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE
from cephalo_common.ids import utc_now
from cephalo_common.logging import get_logger
from cephalo_gateway.db.repositories import Repositories
from cephalo_gateway.domain import audit, identity
from cephalo_gateway.domain.audit_changes import BodyCopy
from cephalo_gateway.domain.client_ip import client_ip
from cephalo_gateway.domain.credentials import csrf_matches
from cephalo_gateway.domain.identity import ANONYMOUS_ADMIN, AuthMethod, Principal
from cephalo_gateway.domain.signed_links import is_signed_download
from cephalo_gateway.security import Security
from cephalo_gateway.settings import GatewaySettings

log = get_logger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PROBES = frozenset({"/livez", "/readyz", "/healthz", "/metrics"})
LOGIN_PATH = "/api/v1/users/login"
OPEN_PATHS = frozenset({"/api", "/api/v1", "/api/openapi.json", "/api/docs", LOGIN_PATH})
OPEN_PREFIXES = ("/api/v1/hooks/",)
"""Webhooks prove themselves with signatures, not API keys."""
API_KEY_HEADERS = (b"x-cephalo-api-key", b"x-octopus-apikey")
SESSION_COOKIE = "cephalo_session"
CSRF_COOKIE = "cephalo_csrf"
CSRF_HEADERS = (b"x-cephalo-csrf-token", b"x-octopus-csrf-token")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
AUTHENTICATION_MEMO = "cephalo.authentication_memo"
"""A scope extension only an in-process caller can set (the portal, `portal/client.py`):
a dict shared by the API calls made for one page, so a session cookie is checked once per
page instead of once per call. Every call still passes limits, CSRF, authorization, audit."""
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


def is_octopus_path(path: str) -> bool:
    """Octopus-compatible routes answer errors as `{ErrorMessage, Errors}`."""
    return path == "/api" or (
        path.startswith("/api/")
        and not path.startswith("/api/v1/")
        and path not in ("/api/v1", "/api/openapi.json", "/api/docs")
    )


def needs_credentials(path: str) -> bool:
    if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
        return False
    return path.startswith("/api/")


def raw_path(scope: Scope) -> str:
    """The path as the client encoded it (`%2F` inside a name stays encoded)."""
    raw = scope.get("raw_path")
    if not raw:
        return quote(str(scope["path"]))
    return bytes(raw).split(b"?", 1)[0].decode("latin-1")


def signed_download(scope: Scope) -> bool:
    """A package download link whose signature package-feed checks (no key needed)."""
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    return is_signed_download(str(scope["method"]), raw_path(scope), query)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1")).strip() or None
    return None


def _headers(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope.get("headers", []) if key == name]


def cookie(scope: Scope, name: str) -> str | None:
    for raw in _headers(scope, b"cookie"):
        try:
            jar = SimpleCookie(raw)
        except CookieError:
            continue
        if name in jar:
            return jar[name].value or None
    return None


async def session_principal(runtime: Any, security: Security, cookie: str) -> Principal | None:
    """The user of a gateway session cookie; None when it is forged, expired or revoked, or
    its user is disabled."""
    async with unit_of_work(runtime.sessionmaker) as session:
        return await identity.authenticate_session(
            Repositories(session), cookie, key=security.session_key, now=utc_now()
        )


def _memo_of(scope: Scope) -> dict[str, Principal | None] | None:
    memo = (scope.get("extensions") or {}).get(AUTHENTICATION_MEMO)
    return memo if isinstance(memo, dict) else None


def error_body(path: str, status: int, title: str, detail: str, slug: str) -> tuple[bytes, bytes]:
    if is_octopus_path(path):
        body = {"ErrorMessage": detail, "Errors": [detail]}
        return json.dumps(body).encode(), b"application/json"
    problem = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": path,
    }
    return json.dumps(problem).encode(), PROBLEM_CONTENT_TYPE.encode()


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = self._secure_headers(scope, send)
        path: str = scope["path"]
        if path in PROBES or not hasattr(scope["app"].state, "runtime"):
            await self.app(scope, receive, send)
            return
        runtime = scope["app"].state.runtime
        security: Security = runtime.extras["security"]
        state: dict[str, Any] = scope.setdefault("state", {})
        client = scope.get("client")
        peer = str(client[0]) if client else None
        forwarded = _headers(scope, b"x-forwarded-for")
        state["client_ip"] = client_ip(peer, forwarded, security.trusted_proxies)
        send = self._audited(scope, send, runtime)
        if audit.is_state_changing(scope["method"]):
            receive = _copying(receive, scope, state)
        await self._guarded(scope, receive, send, security, state)

    async def _guarded(
        self, scope: Scope, receive: Receive, send: Send, security: Security, state: dict[str, Any]
    ) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        limited = security.limits.per_ip.take(f"ip:{state['client_ip']}")
        if not limited.allowed:
            await self._refuse(scope, send, 429, "too many requests from this address", limited)
            return
        principal, presented = await self._authenticate(scope, security)
        if presented and principal is None:
            await self._refuse(scope, send, 401, "the API key or session is not valid")
            return
        if principal is None and needs_credentials(path):
            if signed_download(scope):
                state["signed_download"] = True
                state["principal"] = None
                await self.app(scope, receive, send)
                return
            if self.settings.auth_required:
                await self._refuse(scope, send, 401, "sign in or send an API key")
                return
            principal = ANONYMOUS_ADMIN
        if principal is not None:
            key = f"user:{principal.user_id or principal.username}"
            limited = security.limits.per_user.take(key)
            if not limited.allowed:
                state["principal"] = principal
                await self._refuse(scope, send, 429, "too many requests from this user", limited)
                return
        state["principal"] = principal
        if (
            principal is not None
            and principal.method == AuthMethod.SESSION
            and method in UNSAFE_METHODS
            and path != LOGIN_PATH
            and not self._csrf_ok(scope, security, principal)
        ):
            await self._refuse(scope, send, 403, "the CSRF token is missing or does not match")
            return
        await self.app(scope, receive, send)

    async def _authenticate(
        self, scope: Scope, security: Security
    ) -> tuple[Principal | None, bool]:
        """(principal, whether credentials were presented at all)."""
        key = next((v for name in API_KEY_HEADERS if (v := _header(scope, name))), None)
        runtime = scope["app"].state.runtime
        if key is not None:
            async with unit_of_work(runtime.sessionmaker) as session:
                return await identity.authenticate_api_key(
                    Repositories(session), key, utc_now()
                ), True
        session_cookie = cookie(scope, SESSION_COOKIE)
        if session_cookie is None:
            return None, False
        memo = _memo_of(scope)
        if memo is not None and session_cookie in memo:
            return memo[session_cookie], True
        found = await session_principal(runtime, security, session_cookie)
        if memo is not None:
            memo[session_cookie] = found
        return found, True

    def _csrf_ok(self, scope: Scope, security: Security, principal: Principal) -> bool:
        presented = next((v for name in CSRF_HEADERS if (v := _header(scope, name))), None)
        return csrf_matches(security.session_key, str(principal.session_id), presented)

    async def _refuse(
        self, scope: Scope, send: Send, status: int, detail: str, limited: Any = None
    ) -> None:
        title = {401: "Unauthorized", 403: "Forbidden", 429: "Too many requests"}[status]
        slug = title.lower().replace(" ", "-")
        body, content_type = error_body(scope["path"], status, title, detail, slug)
        headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
        if limited is not None:
            headers.append((b"retry-after", str(limited.retry_after_seconds).encode()))
        scope.setdefault("state", {})["audit_detail"] = detail
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _secure_headers(self, scope: Scope, send: Send) -> Send:
        https = scope.get("scheme") == "https"

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                if https and self.settings.hsts_seconds > 0:
                    value = f"max-age={self.settings.hsts_seconds}; includeSubDomains"
                    headers.append((b"strict-transport-security", value.encode()))
                message["headers"] = headers
            await send(message)

        return wrapped

    def _audited(self, scope: Scope, send: Send, runtime: Any) -> Send:
        recorded = False

        async def wrapped(message: Message) -> None:
            nonlocal recorded
            if message["type"] == "http.response.start" and not recorded:
                recorded = True
                status = int(message["status"])
                if audit.should_record(scope["method"], status):
                    await _record(scope, status, runtime)
            await send(message)

        return wrapped


def _copying(receive: Receive, scope: Scope, state: dict[str, Any]) -> Receive:
    """Keep a bounded copy of the request body as the route reads it, for the audit entry's
    `changes`: the body still streams on unbuffered."""
    copy = state["audit_body"] = BodyCopy(_header(scope, b"content-type"))

    async def wrapped() -> Message:
        message = await receive()
        if message["type"] == "http.request":
            copy.add(bytes(message.get("body", b"")), bool(message.get("more_body", False)))
        return message

    return wrapped


def _changes(state: dict[str, Any]) -> dict[str, Any] | None:
    """A summary that cannot be made must not cost the request its audit entry."""
    copy: BodyCopy | None = state.get("audit_body")
    try:
        return copy.changes() if copy is not None else None
    except Exception:
        log.exception("audit changes could not be summarised")
        return {"summary": "could not be summarised"}


async def _record(scope: Scope, status: int, runtime: Any) -> None:
    """Write one audit row; a failure is logged and counted, never raised (the request has
    already had its effect and the client must learn its answer)."""
    state: dict[str, Any] = scope.get("state", {})
    if state.get("audit_skip"):
        return
    principal: Principal | None = state.get("principal")
    method = str(scope["method"]).upper()
    actor = state.get("audit_actor") or (principal.username if principal else audit.ANONYMOUS)
    user_id: uuid.UUID | None = state.get("audit_user_id") or (
        principal.user_id if principal else None
    )
    entry = audit.AuditEntry(
        method=method,
        path=audit.storable(scope["path"]),
        status=status,
        space_id=state.get("audit_space_id"),
        actor=audit.storable(str(actor))[:200],
        request_id=audit.storable(str(state.get("request_id") or "")),
        upstream=state.get("audit_upstream") or "api-gateway",
        category=state.get("audit_category") or audit.category_of(method, status),
        user_id=user_id,
        ip_address=state.get("client_ip"),
        user_agent=audit.storable(_header(scope, b"user-agent")),
        detail=audit.storable(state.get("audit_detail")),
        changes=_changes(state),
    )
    try:
        async with unit_of_work(runtime.sessionmaker) as session:
            await audit.record(Repositories(session), entry)
    except Exception:
        metrics = runtime.extras.get("gateway")
        if metrics is not None:
            metrics.metrics.audit_failures.inc()
        log.exception("audit write failed", method=entry.method, path=entry.path)
