"""Identity: who may call at all, sign-in, sessions and CSRF, API keys, the first
administrator, and that no secret is stored in clear."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr

from cephalo_common.ids import utc_now
from cephalo_common.security import internal_token
from cephalo_common.testing import running
from cephalo_gateway.__main__ import main as gateway_main
from cephalo_gateway.app import create_app
from cephalo_gateway.domain.credentials import new_api_key
from cephalo_gateway.settings import GatewaySettings

PASSWORD = "correct horse battery staple"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def pg(url: str) -> str:
    return url.replace("postgresql+asyncpg", "postgresql")


async def make_user(admin: httpx.AsyncClient, **extra: Any) -> dict[str, Any]:
    body = {"username": unique("alice"), "password": PASSWORD, **extra}
    response = await admin.post("/api/v1/users", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def login(client: httpx.AsyncClient, username: str, password: str) -> httpx.Response:
    return await client.post(
        "/api/v1/users/login", json={"username": username, "password": password}
    )


@pytest.fixture
async def anonymous(stack: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        yield client


async def test_requests_without_credentials_are_refused_except_open_routes(
    anonymous: httpx.AsyncClient,
) -> None:
    for path in (
        "/api/v1/spaces",
        "/api/v1/spaces/default/projects",
        "/api/v1/audit-events",
        "/api/v1/unicorns",
    ):
        response = await anonymous.get(path)
        assert response.status_code == 401, path
        assert response.headers["content-type"] == "application/problem+json"
    for path in ("/livez", "/readyz", "/healthz", "/metrics", "/api", "/api/v1"):
        assert (await anonymous.get(path)).status_code == 200, path
    assert (
        await anonymous.post("/api/v1/users/login", json={"username": "x", "password": "y"})
    ).status_code == 401


async def test_unknown_user_and_wrong_password_get_the_same_answer(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    user = await make_user(admin)
    unknown = await login(anonymous, unique("nobody"), PASSWORD)
    wrong = await login(anonymous, user["username"], "not the password at all")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.json() == wrong.json()


async def test_a_login_gives_a_secure_session_cookie_and_csrf_is_required(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    user = await make_user(admin)
    signed_in = await login(anonymous, user["username"], PASSWORD)
    assert signed_in.status_code == 200, signed_in.text
    cookies = signed_in.headers.get_list("set-cookie")
    session_cookie = next(c for c in cookies if c.startswith("cephalo_session="))
    lowered = session_cookie.lower()
    assert "httponly" in lowered and "secure" in lowered and "samesite=lax" in lowered
    assert signed_in.headers["cache-control"] == "no-store"
    value = session_cookie.split(";")[0].split("=", 1)[1]
    csrf = signed_in.json()["csrf_token"]
    cookie = {"cookie": f"cephalo_session={value}"}

    me = await anonymous.get("/api/v1/users/me", headers=cookie)
    assert me.status_code == 200 and me.json()["username"] == user["username"]
    own_key = {"purpose": "cli"}
    no_csrf = await anonymous.post("/api/v1/users/me/api-keys", json=own_key, headers=cookie)
    assert no_csrf.status_code == 403 and "CSRF" in no_csrf.json()["detail"]
    bad_csrf = await anonymous.post(
        "/api/v1/users/me/api-keys",
        json=own_key,
        headers={**cookie, "X-Cephalo-Csrf-Token": "x" + csrf},
    )
    assert bad_csrf.status_code == 403
    with_csrf = await anonymous.post(
        "/api/v1/users/me/api-keys", json=own_key, headers={**cookie, "X-Cephalo-Csrf-Token": csrf}
    )
    assert with_csrf.status_code == 201, with_csrf.text

    out = await anonymous.post(
        "/api/v1/users/logout", headers={**cookie, "X-Cephalo-Csrf-Token": csrf}
    )
    assert out.status_code == 204
    assert (await anonymous.get("/api/v1/users/me", headers=cookie)).status_code == 401
    forged = await anonymous.get(
        "/api/v1/users/me", headers={"cookie": f"cephalo_session={value[:-2]}xx"}
    )
    assert forged.status_code == 401


async def test_service_accounts_cannot_sign_in_with_a_password(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    refused = await admin.post(
        "/api/v1/users",
        json={"username": unique("ci"), "password": PASSWORD, "is_service_account": True},
    )
    assert refused.status_code == 422


async def test_api_keys_are_shown_once_work_in_both_headers_and_stop_when_revoked(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    account = await make_user(admin, password=None, is_service_account=True)
    created = await admin.post(f"/api/v1/users/{account['id']}/api-keys", json={"purpose": "CI"})
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("API-") and len(key) >= 4 + 52
    assert created.json()["expires_at"] is not None
    listed = (await admin.get(f"/api/v1/users/{account['id']}/api-keys")).json()
    assert all("key" not in item and key not in str(item) for item in listed)

    for header in ("X-Cephalo-Api-Key", "X-Octopus-ApiKey"):
        me = await anonymous.get("/api/v1/users/me", headers={header: key})
        assert me.status_code == 200 and me.json()["id"] == account["id"], header

    used = (await admin.get(f"/api/v1/users/{account['id']}/api-keys")).json()
    assert used[0]["last_used_at"] is not None
    revoked = await admin.delete(f"/api/v1/users/{account['id']}/api-keys/{created.json()['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (
        await anonymous.get("/api/v1/users/me", headers={"X-Cephalo-Api-Key": key})
    ).status_code == 401


async def test_an_expired_key_and_a_disabled_users_key_are_refused(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, stack: Any
) -> None:
    account = await make_user(admin, password=None, is_service_account=True)
    soon = (utc_now() + timedelta(seconds=2)).isoformat()
    short = (
        await admin.post(
            f"/api/v1/users/{account['id']}/api-keys", json={"purpose": "x", "expires_at": soon}
        )
    ).json()
    assert (
        await anonymous.get("/api/v1/users/me", headers={"X-Cephalo-Api-Key": short["key"]})
    ).status_code == 200
    await asyncio.sleep(2.2)
    assert (
        await anonymous.get("/api/v1/users/me", headers={"X-Cephalo-Api-Key": short["key"]})
    ).status_code == 401

    lasting = (
        await admin.post(f"/api/v1/users/{account['id']}/api-keys", json={"purpose": "y"})
    ).json()
    assert (
        await admin.patch(f"/api/v1/users/{account['id']}", json={"is_active": False})
    ).status_code == 200
    assert (
        await anonymous.get("/api/v1/users/me", headers={"X-Cephalo-Api-Key": lasting["key"]})
    ).status_code == 401


async def test_no_key_or_password_is_stored_in_clear(
    admin: httpx.AsyncClient, anonymous: httpx.AsyncClient, stack: Any
) -> None:
    user = await make_user(admin)
    key = (
        await admin.post(f"/api/v1/users/{user['id']}/api-keys", json={"purpose": "dump"})
    ).json()["key"]
    signed_in = await login(anonymous, user["username"], PASSWORD)
    session_value = signed_in.headers["set-cookie"].split(";")[0].split("=", 1)[1]
    connection = await asyncpg.connect(pg(stack.database_url))
    try:
        dump = []
        for table in ("users", "api_keys", "sessions", "audit_events", "webhooks", "teams"):
            rows = await connection.fetch(f"SELECT * FROM gateway.{table}")
            dump += [str(dict(row)) for row in rows]
        password_hash = await connection.fetchval(
            "SELECT password_hash FROM gateway.users WHERE id = $1", uuid.UUID(user["id"])
        )
    finally:
        await connection.close()
    text = "\n".join(dump)
    for secret in (PASSWORD, key, key[4:], stack.admin_key, stack.admin_key[4:], session_value):
        assert secret not in text
    assert password_hash.startswith(("$argon2id$", "$scrypt$"))


async def test_an_outdated_password_hash_is_replaced_at_the_next_login(
    stack: Any, admin: httpx.AsyncClient
) -> None:
    user = await make_user(admin)
    stronger = stack.settings.model_copy(
        update={
            "passwords": stack.settings.passwords.model_copy(
                update={"scrypt_log2_n": 9, "argon2_time_cost": 2}
            )
        }
    )
    connection = await asyncpg.connect(pg(stack.database_url))
    try:
        query = "SELECT password_hash FROM gateway.users WHERE id = $1"
        before = await connection.fetchval(query, uuid.UUID(user["id"]))
        async with running(create_app(stronger)) as client:
            assert (await login(client, user["username"], PASSWORD)).status_code == 200
        after = await connection.fetchval(query, uuid.UUID(user["id"]))
    finally:
        await connection.close()
    assert before != after
    async with running(create_app(stronger)) as client:
        assert (await login(client, user["username"], PASSWORD)).status_code == 200


async def test_repeated_failed_logins_are_throttled(stack: Any, admin: httpx.AsyncClient) -> None:
    user = await make_user(admin)
    settings = stack.settings.model_copy(
        update={
            "rate_limits": stack.settings.rate_limits.model_copy(
                update={"failed_logins_per_minute": 3}
            )
        }
    )
    async with running(create_app(settings)) as client:
        statuses = [
            (await login(client, user["username"], "wrong password!")).status_code for _ in range(4)
        ]
        assert statuses == [401, 401, 401, 429]
        throttled = await login(client, user["username"], PASSWORD)
        assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) >= 1


async def test_the_bootstrap_key_is_registered_once_and_revocation_sticks(stack: Any) -> None:
    key = new_api_key()
    settings = stack.settings.model_copy(update={"bootstrap_api_key": SecretStr(key)})
    for _ in range(2):
        async with running(create_app(settings)) as client:
            me = await client.get("/api/v1/users/me", headers={"X-Cephalo-Api-Key": key})
            assert me.status_code == 200 and me.json()["username"] == "bootstrap"
            keys = (
                await client.get("/api/v1/users/me/api-keys", headers={"X-Cephalo-Api-Key": key})
            ).json()
    assert sum(1 for k in keys if k["display"] == key[:12] + "…") == 1
    async with running(create_app(settings)) as client:
        mine = next(k for k in keys if k["display"] == key[:12] + "…")
        headers = {"X-Cephalo-Api-Key": key}
        assert (
            await client.delete(f"/api/v1/users/me/api-keys/{mine['id']}", headers=headers)
        ).status_code == 200
    async with running(create_app(settings)) as client:
        assert (
            await client.get("/api/v1/users/me", headers={"X-Cephalo-Api-Key": key})
        ).status_code == 401


async def test_with_authentication_off_anonymous_callers_act_as_administrator(stack: Any) -> None:
    settings = stack.settings.model_copy(update={"auth_required": False})
    async with running(create_app(settings)) as client:
        assert (await client.get("/api/v1/spaces/default/environments")).status_code == 200
        created = await client.post(
            "/api/v1/spaces/default/environments", json={"name": unique("Open")}
        )
        assert created.status_code == 201
        wrong = await client.get(
            "/api/v1/spaces", headers={"X-Cephalo-Api-Key": "API-NOTAKEYNOTAKEYNOTAKEY"}
        )
        assert wrong.status_code == 401


async def test_create_admin_makes_a_working_administrator(
    stack: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    username = unique("root")
    password_file = tmp_path / "password"
    password_file.write_text(PASSWORD + "\n")
    monkeypatch.setenv("CEPHALO_GATEWAY_DATABASE__URL", stack.database_url)
    await asyncio.to_thread(
        gateway_main,
        ["create-admin", "--username", username, "--password-file", str(password_file)],
    )
    with pytest.raises(SystemExit) as again:
        await asyncio.to_thread(
            gateway_main,
            ["create-admin", "--username", username, "--password-file", str(password_file)],
        )
    assert again.value.code == 1
    async with running(create_app(stack.settings)) as client:
        signed_in = await login(client, username, PASSWORD)
        assert signed_in.status_code == 200
        cookie = signed_in.headers["set-cookie"].split(";")[0]
        mine = (await client.get("/api/v1/users/me/permissions", headers={"cookie": cookie})).json()
        assert mine["is_administrator"] is True


async def test_upstreams_are_told_who_calls_in_a_signed_token(stack: Any, serve: Any) -> None:
    seen: dict[str, str] = {}

    async def echo(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.update({k.decode(): v.decode() for k, v in scope["headers"]})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b"[]"})

    async with serve(echo) as url:
        settings = stack.settings.model_copy(update={"orchestrator_url": url})
        async with running(create_app(settings)) as client:
            response = await client.get(
                f"/api/v1/spaces/{uuid.uuid4()}/tasks",
                headers={"X-Cephalo-Api-Key": stack.admin_key},
            )
    assert response.status_code == 200
    assert "x-cephalo-api-key" not in seen
    secret = settings.internal_token_secret.get_secret_value().encode()
    identity = internal_token.verify(seen["x-cephalo-identity"], "deploy-orchestrator", secret)
    assert identity["name"] == "bootstrap" and identity["admin"] is True
    with pytest.raises(internal_token.WrongAudience):
        internal_token.verify(seen["x-cephalo-identity"], "release-service", secret)


def test_settings_have_no_default_password() -> None:
    settings = GatewaySettings()
    assert settings.initial_admin_password is None and settings.bootstrap_api_key is None
    assert settings.auth_required is True
