"""What every portal page is built from: who is looking, what they may do, and rendering."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from cephalo_gateway.domain.identity import Principal
from cephalo_gateway.edge import session_principal
from cephalo_gateway.portal.client import PortalClient
from cephalo_gateway.portal.session import (
    COOKIE,
    CSRF_FIELD,
    PortalSession,
    csrf_ok,
    portal_key,
    unseal,
)
from cephalo_gateway.security import Security

PREFIX = "/app"
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
TERMINAL = frozenset({"Success", "Failed", "Canceled", "TimedOut"})


class SignInRequired(Exception):
    """No valid portal cookie: the handler sends the browser to the sign-in page."""


class CsrfRefused(Exception):
    """A form without the session's CSRF token."""


@dataclass(frozen=True)
class Viewer:
    username: str
    is_administrator: bool
    permissions: frozenset[str] = field(default_factory=frozenset)

    def can(self, permission: str) -> bool:
        """Whether the user holds `permission` anywhere (the API still checks the object)."""
        return self.is_administrator or permission in self.permissions


@dataclass
class Portal:
    request: Request
    session: PortalSession
    api: PortalClient
    viewer: Viewer

    def render(self, template: str, title: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(
            self.request,
            template,
            title,
            status,
            viewer=self.viewer,
            csrf_token=self.session.csrf_token,
            **context,
        )


def render(
    request: Request, template: str, title: str, status: int = 200, **context: Any
) -> HTMLResponse:
    html = TEMPLATES.get_template(template).render(
        title=title, prefix=PREFIX, path=request.url.path, **context
    )
    return HTMLResponse(html, status_code=status, headers={"cache-control": "no-store"})


def redirect(path: str) -> RedirectResponse:
    return RedirectResponse(PREFIX + path, status_code=303)


def security_of(request: Request) -> Security:
    security: Security = request.app.state.runtime.extras["security"]
    return security


def client_ip(request: Request) -> str:
    return str(getattr(request.state, "client_ip", None) or "127.0.0.1")


def session_of(request: Request) -> PortalSession | None:
    return unseal(request.cookies.get(COOKIE), portal_key(security_of(request).session_key))


def viewer_of(principal: Principal) -> Viewer:
    granted = {str(p) for grant in principal.grants for p in grant.permissions}
    return Viewer(principal.username, principal.is_administrator, frozenset(granted))


async def _portal(request: Request) -> AsyncIterator[Portal]:
    """The signed-in user, authenticated once for the page: what they may do decides which
    buttons show, and every API call the page makes reuses the same authentication."""
    session = session_of(request)
    if session is None:
        raise SignInRequired
    security = security_of(request)
    principal = await session_principal(request.app.state.runtime, security, session.gateway_cookie)
    if principal is None:
        raise SignInRequired
    async with PortalClient(request.app, session, client_ip(request), principal) as api:
        yield Portal(request, session, api, viewer_of(principal))


async def _checked_portal(request: Request, portal: Annotated[Portal, Depends(_portal)]) -> Portal:
    """For forms: the hidden CSRF field must carry the session's token."""
    form = await request.form()
    presented = form.get(CSRF_FIELD) or request.headers.get("x-portal-csrf-token")
    if not csrf_ok(portal.session, presented if isinstance(presented, str) else None):
        raise CsrfRefused
    return portal


PortalDep = Annotated[Portal, Depends(_portal)]
FormPortalDep = Annotated[Portal, Depends(_checked_portal)]
