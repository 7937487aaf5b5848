"""The portal's client of the public API: the gateway's own ASGI app, called in process.

Every call goes through the edge (authentication, limits, CSRF, audit) and authorization
exactly as the browser's own calls would, as the signed-in user and from their address:
the portal can show and do nothing the API would refuse them. The calls made for one page
share one authentication of the session (`edge.AUTHENTICATION_MEMO`).
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from cephalo_gateway.domain.identity import Principal
from cephalo_gateway.edge import AUTHENTICATION_MEMO, SESSION_COOKIE
from cephalo_gateway.portal.session import PortalSession

SPACE = "default"
TIMEOUT_SECONDS = 30.0


class ApiError(Exception):
    """A problem answer of the API, kept for the page to show."""

    def __init__(self, status: int, title: str, detail: str, errors: list[Any]) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = errors

    @classmethod
    def of(cls, response: httpx.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        errors = body.get("errors") or []
        return cls(
            response.status_code,
            str(body.get("title") or response.reason_phrase),
            str(body.get("detail") or ""),
            errors if isinstance(errors, list) else [],
        )

    @property
    def message(self) -> str:
        parts = [self.detail or self.title]
        for error in self.errors[:5]:
            if isinstance(error, dict):
                where = ".".join(str(p) for p in error.get("loc", [])[1:])
                parts.append(f"{where}: {error.get('msg', '')}".strip(": "))
        return "; ".join(p for p in parts if p)


def _sharing_authentication(app: ASGIApp, memo: dict[str, Principal | None]) -> ASGIApp:
    """The app as seen by one page's calls: they share one authentication of the session."""

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        extensions = {**(scope.get("extensions") or {}), AUTHENTICATION_MEMO: memo}
        await app({**scope, "extensions": extensions}, receive, send)

    return call


class PortalClient:
    def __init__(
        self,
        app: ASGIApp,
        session: PortalSession | None,
        client_ip: str,
        principal: Principal | None = None,
    ) -> None:
        """`principal`: the session's user when the caller has already authenticated it."""
        headers = {"accept": "application/json"}
        memo: dict[str, Principal | None] = {}
        if session is not None:
            headers["cookie"] = f"{SESSION_COOKIE}={session.gateway_cookie}"
            headers["x-cephalo-csrf-token"] = session.csrf_token
            if principal is not None:
                memo[session.gateway_cookie] = principal
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(
                app=_sharing_authentication(app, memo), client=(client_ip, 0)
            ),
            base_url="http://portal.internal",
            headers=headers,
            timeout=TIMEOUT_SECONDS,
        )
        self.space_base = f"/api/v1/spaces/{SPACE}"

    async def __aenter__(self) -> PortalClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.aclose()

    async def raw(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self._client.request(method, path, **kwargs)

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON of a successful answer; `ApiError` for any other."""
        response = await self._client.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ApiError.of(response)
        return response.json() if response.content else None

    async def space(self, method: str, path: str, **kwargs: Any) -> Any:
        return await self.call(method, self.space_base + path, **kwargs)

    async def items(self, path: str, **params: Any) -> list[Any]:
        """A list from a route that answers a bare list or a page `{items, …}`."""
        body = await self.space("GET", path, params=params or None)
        items = body.get("items", []) if isinstance(body, dict) else body
        return list(items)
