"""The audit log: every mutating request once (with actor, address and category), refused
credentials too, filters, append-only storage; plus rate limits and security headers."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from cephalo_common.testing import running
from cephalo_gateway.app import create_app
from cephalo_gateway.domain.client_ip import client_ip, parse_networks


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


class Recorder:
    """Sends requests with fresh request ids and remembers them."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.sent: list[tuple[str, str, str, int]] = []

    async def __call__(
        self, method: str, path: str, template: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        request_id = unique("audit")
        headers = {**kwargs.pop("headers", {}), "X-Request-Id": request_id}
        response = await self.client.request(method, path, headers=headers, **kwargs)
        self.sent.append((request_id, method, template or path, response.status_code))
        return response


async def test_every_mutating_route_writes_exactly_one_audit_entry(
    stack: Any, admin: httpx.AsyncClient
) -> None:
    call = Recorder(admin)
    user = (
        await call(
            "POST", "/api/v1/users", json={"username": unique("u"), "password": "a long password!"}
        )
    ).json()
    uid = user["id"]
    await call(
        "PATCH", f"/api/v1/users/{uid}", "/api/v1/users/{user_ref}", json={"display_name": "U"}
    )
    key = (
        await call(
            "POST",
            f"/api/v1/users/{uid}/api-keys",
            "/api/v1/users/{user_ref}/api-keys",
            json={"purpose": "p"},
        )
    ).json()
    await call(
        "DELETE",
        f"/api/v1/users/{uid}/api-keys/{key['id']}",
        "/api/v1/users/{user_ref}/api-keys/{key_id}",
    )
    team = (await call("POST", "/api/v1/teams", json={"name": unique("t")})).json()
    await call(
        "PUT",
        f"/api/v1/teams/{team['id']}",
        "/api/v1/teams/{team_id}",
        json={"member_user_ids": [uid]},
    )
    assignment = (
        await call(
            "POST",
            f"/api/v1/teams/{team['id']}/role-assignments",
            "/api/v1/teams/{team_id}/role-assignments",
            json={"role": "project-viewer"},
        )
    ).json()
    await call(
        "DELETE",
        f"/api/v1/teams/{team['id']}/role-assignments/{assignment['id']}",
        "/api/v1/teams/{team_id}/role-assignments/{assignment_id}",
    )
    await call("DELETE", f"/api/v1/teams/{team['id']}", "/api/v1/teams/{team_id}")
    account = (
        await admin.post(
            "/api/v1/users", json={"username": unique("sa"), "is_service_account": True}
        )
    ).json()
    hook = (
        await call(
            "POST",
            "/api/v1/webhooks",
            json={
                "name": "h",
                "space": "default",
                "provider": "github",
                "action": "create-release",
                "project": "p",
                "service_account_id": account["id"],
            },
        )
    ).json()
    await call("POST", hook["url"], "/api/v1/hooks/{hook_id}", content=b"{}")
    await call("DELETE", f"/api/v1/webhooks/{hook['id']}", "/api/v1/webhooks/{hook_id}")
    await call(
        "POST",
        "/api/v1/users/login",
        json={"username": user["username"], "password": "a long password!"},
    )
    await call(
        "POST",
        "/api/v1/users/login",
        json={"username": user["username"], "password": "wrong password!!"},
    )
    await call("POST", "/api/v1/users/logout")
    await call("POST", "/api/v1/spaces/default/environments", json={"name": unique("Env")})
    await call("POST", "/api/v1/spaces/default/environments", json={"name": ""})
    await call("POST", "/api/v1/spaces/default/unicorns", json={})
    await call("POST", "/api/default/releases/create/v1", json={"ProjectName": "No such project"})
    await call(
        "POST",
        "/api/v1/spaces",
        headers={"X-Cephalo-Api-Key": "API-NOTVALIDNOTVALIDNOTVALID"},
        json={},
    )

    document = create_app(stack.settings).openapi()
    mutating = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in ("post", "put", "patch", "delete")
    }
    exercised = {(method, template) for _, method, template, _ in call.sent}
    assert mutating <= exercised, mutating - exercised

    events = (await admin.get("/api/v1/audit-events", params={"limit": 500})).json()
    for request_id, method, template, status in call.sent:
        matching = [e for e in events if e["request_id"] == request_id]
        assert len(matching) == 1, (method, template, status, matching)
        [event] = matching
        assert (event["method"], event["status"]) == (method, status)
        assert event["ip_address"] == "127.0.0.1" and event["category"]
    by_id = {e["request_id"]: e for e in events}
    categories = [by_id[request_id]["category"] for request_id, *_ in call.sent]
    assert {
        "LoginSucceeded",
        "LoginFailed",
        "LoggedOut",
        "Created",
        "Modified",
        "Deleted",
        "AuthenticationFailed",
    } <= set(categories)


async def test_reads_are_not_audited_but_refusals_are(stack: Any, admin: httpx.AsyncClient) -> None:
    call = Recorder(admin)
    await call("GET", "/api/v1/spaces/default/environments")
    await call(
        "GET", "/api/v1/spaces", headers={"X-Cephalo-Api-Key": "API-NOTVALIDNOTVALIDNOTVALID"}
    )
    events = {
        e["request_id"]: e
        for e in (await admin.get("/api/v1/audit-events", params={"limit": 500})).json()
    }
    assert call.sent[0][0] not in events
    assert events[call.sent[1][0]]["category"] == "AuthenticationFailed"


async def test_the_audit_log_filters_by_user_category_and_time(
    stack: Any, admin: httpx.AsyncClient
) -> None:
    me = (await admin.get("/api/v1/users/me")).json()
    await admin.post("/api/v1/spaces/default/environments", json={"name": unique("Filter")})
    mine = (
        await admin.get("/api/v1/audit-events", params={"user_id": me["id"], "category": "Created"})
    ).json()
    assert mine and all(e["user_id"] == me["id"] and e["category"] == "Created" for e in mine)
    by_name = (
        await admin.get("/api/v1/audit-events", params={"user": "bootstrap", "limit": 5})
    ).json()
    assert by_name and all(e["actor"] == "bootstrap" for e in by_name)
    newest = mine[0]["occurred_at"]
    after = (
        await admin.get("/api/v1/audit-events", params={"from": newest, "user_id": me["id"]})
    ).json()
    before = (
        await admin.get("/api/v1/audit-events", params={"to": newest, "user_id": me["id"]})
    ).json()
    assert mine[0]["id"] in {e["id"] for e in after}
    assert mine[0]["id"] not in {e["id"] for e in before}
    assert "Created" in (await admin.get("/api/v1/audit-events/categories")).json()


async def test_audit_rows_cannot_be_changed_even_in_the_database(
    stack: Any, admin: httpx.AsyncClient
) -> None:
    for method in ("PUT", "PATCH", "DELETE"):
        assert (await admin.request(method, "/api/v1/audit-events")).status_code in (404, 405)
    connection = await asyncpg.connect(
        stack.database_url.replace("postgresql+asyncpg", "postgresql")
    )
    try:
        for statement in (
            "UPDATE gateway.audit_events SET actor = 'x'",
            "DELETE FROM gateway.audit_events",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await connection.execute(statement)
    finally:
        await connection.close()


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    proxies = parse_networks(["10.0.0.0/8"])
    assert client_ip("203.0.113.9", ["1.2.3.4"], proxies) == "203.0.113.9"
    assert client_ip("10.0.0.5", ["1.2.3.4"], proxies) == "1.2.3.4"
    assert client_ip("10.0.0.5", ["6.6.6.6, 1.2.3.4, 10.0.0.7"], proxies) == "1.2.3.4"
    assert client_ip("10.0.0.5", ["1.2.3.4"], ()) == "10.0.0.5"


async def test_an_audit_entry_takes_the_address_from_a_trusted_proxy(stack: Any) -> None:
    settings = stack.settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]})
    untrusted = stack.settings
    headers = {"X-Cephalo-Api-Key": stack.admin_key, "X-Forwarded-For": "198.51.100.7"}
    seen = []
    for config in (settings, untrusted):
        async with running(create_app(config)) as client:
            request_id = unique("xff")
            await client.post(
                "/api/v1/spaces/default/environments",
                json={"name": unique("Xff")},
                headers={**headers, "X-Request-Id": request_id},
            )
            events = (await client.get("/api/v1/audit-events", headers=headers)).json()
            seen.append(next(e["ip_address"] for e in events if e["request_id"] == request_id))
    assert seen == ["198.51.100.7", "127.0.0.1"]


async def test_bursts_beyond_the_limit_get_429_with_retry_after(stack: Any) -> None:
    limits = stack.settings.rate_limits.model_copy(
        update={
            "per_user_burst": 5,
            "per_user_per_minute": 6,
            "per_ip_burst": 8,
            "per_ip_per_minute": 6,
        }
    )
    settings = stack.settings.model_copy(update={"rate_limits": limits})
    async with running(create_app(settings)) as client:
        keyed = {"X-Cephalo-Api-Key": stack.admin_key}
        statuses = [
            (await client.get("/api/v1/users/me", headers=keyed)).status_code for _ in range(7)
        ]
        assert statuses == [200] * 5 + [429] * 2
        limited = await client.get("/api/v1/users/me", headers=keyed)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        assert limited.headers["content-type"] == "application/problem+json"
        by_address = [(await client.get("/api")).status_code for _ in range(3)]
        assert by_address[-1] == 429
        assert (await client.get("/livez")).status_code == 200


async def test_security_headers_and_no_cors_by_default(stack: Any) -> None:
    async with running(create_app(stack.settings)) as client:
        response = await client.get("/api/v1", headers={"Origin": "https://evil.example"})
        csp = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert "access-control-allow-origin" not in response.headers
        assert "strict-transport-security" not in response.headers
        refused = await client.get("/api/v1/spaces")
        assert "content-security-policy" in refused.headers
    transport = httpx.ASGITransport(app=create_app(stack.settings))
    app = transport.app
    async with (
        app.router.lifespan_context(app),  # type: ignore[attr-defined]
        httpx.AsyncClient(transport=transport, base_url="https://gateway") as tls,
    ):
        secure = await tls.get("/api/v1")
    assert secure.headers["strict-transport-security"].startswith("max-age=")
