"""Audit entries say what a mutating request changed: a bounded summary of its body's fields
in which every sensitive value is "changed" and never stored; odd bodies are described."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from cephalo_gateway.domain.audit_changes import (
    CHANGED,
    MAX_CAPTURED_BYTES,
    MAX_DEPTH,
    MAX_FIELDS,
    MAX_ITEMS,
    BodyCopy,
    is_secret_name,
)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def entry_for(admin: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    events = (await admin.get("/api/v1/audit-events", params={"limit": 100})).json()
    [entry] = [e for e in events if e["request_id"] == request_id]
    return dict(entry)


async def send(
    admin: httpx.AsyncClient, method: str, path: str, **kwargs: Any
) -> tuple[httpx.Response, dict[str, Any]]:
    request_id = unique("changes")
    headers = {**kwargs.pop("headers", {}), "X-Request-Id": request_id}
    response = await admin.request(method, path, headers=headers, **kwargs)
    return response, await entry_for(admin, request_id)


async def rows_containing(database_url: str, needle: str) -> int:
    """Audit rows, and the `audit.recorded` events waiting in the outbox, holding `needle`."""
    connection = await asyncpg.connect(database_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        rows = await connection.fetchval(
            "SELECT count(*) FROM gateway.audit_events t WHERE strpos(t::text, $1) > 0", needle
        )
        events = await connection.fetchval(
            "SELECT count(*) FROM gateway.outbox"
            " WHERE strpos(convert_from(payload, 'UTF8'), $1) > 0",
            needle,
        )
        return int(rows) + int(events)
    finally:
        await connection.close()


@pytest.mark.timeout(120)
async def test_a_variable_set_update_records_its_changes_with_secrets_changed(
    stack: Any, admin: httpx.AsyncClient
) -> None:
    secret = unique("s3cr3t-value")
    password = unique("a long password")
    project = (
        await admin.post("/api/v1/spaces/default/projects", json={"name": unique("Audited")})
    ).json()
    variables_path = f"/api/v1/spaces/default/projects/{project['id']}/variables"
    version = (await admin.get(variables_path)).json()["version"]
    variables = [
        {"name": "ConnectionString", "type": "Sensitive", "value": secret},
        {"name": "Greeting", "value": "hello"},
    ]
    response, entry = await send(
        admin,
        "PUT",
        variables_path,
        json={"version": version, "variables": variables},
    )
    assert response.status_code == 200, response.text
    assert entry["changes"]["fields"]["version"] == version
    recorded = entry["changes"]["fields"]["variables"]
    assert recorded[0] == {"name": "ConnectionString", "type": "Sensitive", "value": CHANGED}
    assert recorded[1] == {"name": "Greeting", "value": "hello"}
    assert await rows_containing(stack.database_url, entry["request_id"]) == 2

    user, entry = await send(
        admin, "POST", "/api/v1/users", json={"username": unique("u"), "password": password}
    )
    assert entry["changes"]["fields"]["password"] == CHANGED
    _, entry = await send(
        admin,
        "POST",
        "/api/v1/users/login",
        json={"username": user.json()["username"], "password": password},
    )
    assert entry["changes"]["fields"] == {"username": user.json()["username"], "password": CHANGED}

    assert await rows_containing(stack.database_url, secret) == 0
    assert await rows_containing(stack.database_url, password) == 0


@pytest.mark.timeout(120)
async def test_odd_bodies_are_summarised_without_failing_the_request(
    stack: Any, admin: httpx.AsyncClient
) -> None:
    path = "/api/v1/spaces/default/environments"
    response, entry = await send(
        admin, "POST", path, content=b"name=Prod", headers={"Content-Type": "text/plain"}
    )
    assert response.status_code < 500
    assert entry["changes"] == {"summary": "not JSON (text/plain)", "bytes": 9}

    large = json.dumps({"name": unique("Big"), "description": "x" * MAX_CAPTURED_BYTES})
    response, entry = await send(
        admin, "POST", path, content=large, headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500
    assert entry["changes"]["summary"].startswith("too large")
    assert entry["changes"]["bytes"] == len(large)

    response, entry = await send(
        admin, "POST", path, content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert entry["changes"]["summary"] == "not valid JSON"

    odd = b'{"name": "a\\u0000b\\ud800", "n": 1e999}'
    response, entry = await send(
        admin, "POST", path, content=odd, headers={"Content-Type": "application/json"}
    )
    assert response.status_code < 500
    assert entry["changes"]["fields"] == {"name": "a\ufffdb?", "n": "inf"}

    response, entry = await send(admin, "POST", "/api/v1/users/logout")
    assert entry["changes"] is None


def test_secret_names_values_and_sensitive_variables_are_changed() -> None:
    for name in ("password", "Api_Key", "apiKey", "X-Token", "client_secret", "sshPrivateKey"):
        assert is_secret_name(name), name
    for name in ("name", "description", "environment_ids", "version"):
        assert not is_secret_name(name), name
    body = {
        "Variables": [{"Name": "Db", "Type": "Sensitive", "Value": "hidden"}],
        "note": "API-" + "A" * 26,
        "cert": "-----BEGIN RSA PRIVATE KEY-----\nMII...",
        "prompted": {"is_sensitive": True, "value": "hidden", "name": "p"},
        "prompted_variables": {"Token2": "hidden", "Region": "hidden"},
        "options": {"Variables": {"Region": "hidden"}},
        "deep": {"a": {"b": {"c": {"d": 1}}}},
        "many": list(range(MAX_ITEMS + 5)),
        **{f"f{i}": i for i in range(MAX_FIELDS + 3)},
    }
    copy = BodyCopy("application/json; charset=utf-8")
    copy.add(json.dumps(body).encode(), more=False)
    changes = copy.changes()
    assert changes is not None
    fields = changes["fields"]
    assert fields["Variables"] == [{"Name": "Db", "Type": "Sensitive", "Value": CHANGED}]
    assert fields["note"] == CHANGED and fields["cert"] == CHANGED
    assert fields["prompted"] == {"is_sensitive": True, "value": CHANGED, "name": "p"}
    assert fields["prompted_variables"] == {"Token2": CHANGED, "Region": CHANGED}
    assert fields["options"] == {"Variables": {"Region": CHANGED}}
    assert fields["deep"] == {"a": {"b": {"c": "{1 fields}"}}} and MAX_DEPTH == 3
    assert len(fields["many"]) == MAX_ITEMS + 1
    assert len(fields) == MAX_FIELDS + 1 and fields["…"] == f"{len(body) - MAX_FIELDS} more fields"
    assert "hidden" not in json.dumps(changes)


def test_a_body_is_copied_only_as_far_as_needed() -> None:
    upload = BodyCopy("multipart/form-data; boundary=x")
    upload.add(b"x" * 1000, more=True)
    upload.add(b"y" * 1000, more=False)
    assert not upload.kept
    assert upload.changes() == {"summary": "not JSON (multipart/form-data)", "bytes": 2000}
    refused = BodyCopy("application/json")
    refused.add(b'{"name": ', more=True)
    assert refused.changes() == {"summary": "body not read in full (9 bytes read)", "bytes": 9}
    large = BodyCopy(None)
    for _ in range(3):
        large.add(b" " * MAX_CAPTURED_BYTES, more=True)
    assert len(large.kept) == MAX_CAPTURED_BYTES and BodyCopy(None).changes() is None
