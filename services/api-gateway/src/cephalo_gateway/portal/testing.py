"""What the portal's tests share (test modules cannot import each other under importlib
mode): users with a role, a signed-in browser-like client, and page checks."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from starlette.types import ASGIApp

from cephalo_gateway.portal.audit import page_problems

PASSWORD = "correct horse battery staple"  # noqa: S105  # pragma: allowlist secret - test users only
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def new_user(admin: httpx.AsyncClient, role: str | None) -> str:
    """A user (password `PASSWORD`) in a new team holding `role` in every space."""
    username = unique("portal")
    response = await admin.post("/api/v1/users", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    user = response.json()
    if role is not None:
        team = await admin.post(
            "/api/v1/teams", json={"name": unique("team"), "member_user_ids": [user["id"]]}
        )
        assert team.status_code == 201, team.text
        assigned = await admin.post(
            f"/api/v1/teams/{team.json()['id']}/role-assignments", json={"role": role}
        )
        assert assigned.status_code == 201, assigned.text
    return username


@asynccontextmanager
async def signed_in(app: ASGIApp, username: str) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield await sign_in(client, username)


async def sign_in(client: httpx.AsyncClient, username: str) -> httpx.AsyncClient:
    response = await client.post("/app/sign-in", data={"username": username, "password": PASSWORD})
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/app/dashboard"
    assert "cephalo_portal" in client.cookies
    return client


def well_formed(response: httpx.Response, status: int = 200) -> str:
    """The page's HTML, after checking its status, title, landmark and labels."""
    assert response.status_code == status, response.text
    assert page_problems(response.text) == [], response.text
    return response.text


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match is not None
    return match.group(1)
