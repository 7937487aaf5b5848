"""CI webhooks: signatures over the raw body, replays, stale deliveries, and the release
they create (real gateway and release-service)."""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from cephalo_gateway.domain import webhooks as hooks


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


def github_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@pytest.fixture
async def build_server(admin: httpx.AsyncClient) -> dict[str, Any]:
    """A service account with the build-server role in the default space."""
    space_id = (await admin.get("/api/v1/spaces/default")).json()["id"]
    account = (
        await admin.post(
            "/api/v1/users", json={"username": unique("ci"), "is_service_account": True}
        )
    ).json()
    team = (
        await admin.post(
            "/api/v1/teams", json={"name": unique("CI"), "member_user_ids": [account["id"]]}
        )
    ).json()
    assigned = await admin.post(
        f"/api/v1/teams/{team['id']}/role-assignments",
        json={"role": "build-server", "space_id": space_id},
    )
    assert assigned.status_code == 201, assigned.text
    return dict(account)


async def hook_for(
    admin: httpx.AsyncClient, account: dict[str, Any], provider: str, **extra: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    name = unique("Hooked")
    project = (await admin.post("/api/v1/spaces/default/projects", json={"name": name})).json()
    step = {"name": "Hello", "target_roles": ["web"], "script_body": "echo hi"}
    await admin.put(
        f"/api/v1/spaces/default/projects/{project['id']}/deployment-process",
        json={"steps": [step]},
    )
    created = await admin.post(
        "/api/v1/webhooks",
        json={
            "name": name,
            "space": "default",
            "provider": provider,
            "action": "create-release",
            "project": name,
            "service_account_id": account["id"],
            **extra,
        },
    )
    assert created.status_code == 201, created.text
    return dict(created.json()), dict(project)


async def releases_of(admin: httpx.AsyncClient, project: dict[str, Any]) -> list[str]:
    body = (await admin.get(f"/api/v1/spaces/default/projects/{project['id']}/releases")).json()
    return [r["version"] for r in (body["items"] if isinstance(body, dict) else body)]


async def test_a_signed_github_release_creates_the_release_and_bad_ones_are_refused(
    stack: Any, admin: httpx.AsyncClient, build_server: dict[str, Any]
) -> None:
    hook, project = await hook_for(admin, build_server, "github")
    secret, url = hook["secret"], hook["url"]
    body = json.dumps({"action": "published", "release": {"tag_name": "v1.4.0"}}).encode()
    good = {
        "X-GitHub-Event": "release",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient(base_url=stack.gateway_url) as ci:
        changed = body.replace(b"1.4.0", b"1.4.1")
        refused = [
            await ci.post(
                url,
                content=changed,
                headers={**good, "X-Hub-Signature-256": github_signature(secret, body)},
            ),
            await ci.post(url, content=body, headers=good),
            await ci.post(
                url,
                content=body,
                headers={
                    **good,
                    "X-Hub-Signature": "sha1="
                    + hmac.new(secret.encode(), body, "sha1").hexdigest(),
                },
            ),
            await ci.post(
                url,
                content=body,
                headers={**good, "X-Hub-Signature-256": github_signature("guess", body)},
            ),
        ]
        assert [r.status_code for r in refused] == [401, 401, 401, 401], [r.text for r in refused]
        accepted = await ci.post(
            url,
            content=body,
            headers={**good, "X-Hub-Signature-256": github_signature(secret, body)},
        )
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["version"] == "1.4.0"
        replay = await ci.post(
            url,
            content=body,
            headers={**good, "X-Hub-Signature-256": github_signature(secret, body)},
        )
        assert replay.status_code == 409
        ping = {**good, "X-GitHub-Event": "ping", "X-GitHub-Delivery": str(uuid.uuid4())}
        ignored = await ci.post(
            url,
            content=b"{}",
            headers={**ping, "X-Hub-Signature-256": github_signature(secret, b"{}")},
        )
        assert ignored.status_code == 202
        unknown = await ci.post(f"/api/v1/hooks/{uuid.uuid4()}", content=body, headers=good)
        assert unknown.status_code == 404
    assert await releases_of(admin, project) == ["1.4.0"]
    events = (
        await admin.get(
            "/api/v1/audit-events", params={"category": "WebhookDelivered", "limit": 500}
        )
    ).json()
    assert any(e["path"] == url and e["actor"] == build_server["username"] for e in events)


async def test_gitlab_token_hooks(
    stack: Any, admin: httpx.AsyncClient, build_server: dict[str, Any]
) -> None:
    hook, project = await hook_for(
        admin, build_server, "gitlab", version_template="2.0.{object_attributes.iid}"
    )
    body = json.dumps(
        {"object_kind": "pipeline", "object_attributes": {"status": "success", "iid": 7}}
    ).encode()
    headers = {"X-Gitlab-Event": "Pipeline Hook", "X-Gitlab-Event-UUID": str(uuid.uuid4())}
    async with httpx.AsyncClient(base_url=stack.gateway_url) as ci:
        wrong = await ci.post(
            hook["url"], content=body, headers={**headers, "X-Gitlab-Token": "nope"}
        )
        assert wrong.status_code == 401
        missing = await ci.post(hook["url"], content=body, headers=headers)
        assert missing.status_code == 401
        good = await ci.post(
            hook["url"], content=body, headers={**headers, "X-Gitlab-Token": hook["secret"]}
        )
        assert good.status_code == 201, good.text
        again = await ci.post(
            hook["url"], content=body, headers={**headers, "X-Gitlab-Token": hook["secret"]}
        )
        assert again.status_code == 409
    assert await releases_of(admin, project) == ["2.0.7"]


def standard_signature(secret: str, message_id: str, timestamp: str, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


async def test_gitlab_signed_hooks_refuse_stale_and_replayed_deliveries(
    stack: Any, admin: httpx.AsyncClient, build_server: dict[str, Any]
) -> None:
    hook, project = await hook_for(admin, build_server, "gitlab-signed")
    assert hook["secret"].startswith("whsec_")
    body = json.dumps({"object_kind": "tag_push", "ref": "refs/tags/v3.1.0"}).encode()

    def headers(message_id: str, timestamp: int, payload: bytes = body) -> dict[str, str]:
        stamp = str(timestamp)
        return {
            "X-Gitlab-Event": "Tag Push Hook",
            "webhook-id": message_id,
            "webhook-timestamp": stamp,
            "webhook-signature": standard_signature(hook["secret"], message_id, stamp, payload),
        }

    now = int(time.time())
    async with httpx.AsyncClient(base_url=stack.gateway_url) as ci:
        stale = await ci.post(hook["url"], content=body, headers=headers("msg-1", now - 3600))
        assert stale.status_code == 401 and "stale" in stale.json()["detail"]
        tampered = headers("msg-2", now)
        bad = await ci.post(hook["url"], content=body + b" ", headers=tampered)
        assert bad.status_code == 401
        good = await ci.post(hook["url"], content=body, headers=headers("msg-3", now))
        assert good.status_code == 201, good.text
        replay = await ci.post(hook["url"], content=body, headers=headers("msg-3", now))
        assert replay.status_code == 409
    assert await releases_of(admin, project) == ["3.1.0"]


async def test_generic_hmac_hooks(
    stack: Any, admin: httpx.AsyncClient, build_server: dict[str, Any]
) -> None:
    hook, project = await hook_for(admin, build_server, "generic")
    body = json.dumps({"version": "5.0.1"}).encode()
    stamp = str(int(time.time()))
    signature = (
        "sha256="
        + hmac.new(hook["secret"].encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    )
    headers = {
        "X-Cephalo-Timestamp": stamp,
        "X-Cephalo-Signature": signature,
        "X-Cephalo-Delivery": "d-1",
    }
    async with httpx.AsyncClient(base_url=stack.gateway_url) as ci:
        assert (await ci.post(hook["url"], content=body, headers=headers)).status_code == 201
        assert (await ci.post(hook["url"], content=body, headers=headers)).status_code == 409
    assert await releases_of(admin, project) == ["5.0.1"]


async def test_a_hook_cannot_do_more_than_its_service_account(
    stack: Any, admin: httpx.AsyncClient
) -> None:
    viewer = (
        await admin.post(
            "/api/v1/users", json={"username": unique("viewer"), "is_service_account": True}
        )
    ).json()
    team = (
        await admin.post(
            "/api/v1/teams", json={"name": unique("Viewers"), "member_user_ids": [viewer["id"]]}
        )
    ).json()
    await admin.post(
        f"/api/v1/teams/{team['id']}/role-assignments", json={"role": "project-viewer"}
    )
    hook, project = await hook_for(admin, viewer, "generic")
    body = json.dumps({"version": "1.0.0"}).encode()
    stamp = str(int(time.time()))
    signature = (
        "sha256="
        + hmac.new(hook["secret"].encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    )
    async with httpx.AsyncClient(base_url=stack.gateway_url) as ci:
        response = await ci.post(
            hook["url"],
            content=body,
            headers={
                "X-Cephalo-Timestamp": stamp,
                "X-Cephalo-Signature": signature,
                "X-Cephalo-Delivery": "v-1",
            },
        )
    assert response.status_code == 403, response.text
    assert await releases_of(admin, project) == []


def test_github_verification_rules() -> None:
    body = b'{"ref":"refs/heads/main"}'
    headers = {
        "x-hub-signature-256": github_signature("s3cret", body),
        "x-github-delivery": "1",
        "x-github-event": "push",
    }
    assert hooks.verify_github(headers, body, "s3cret") == hooks.Delivery("1", "push")
    for broken in (
        {**headers, "x-hub-signature-256": "sha1=abc"},
        {k: v for k, v in headers.items() if k != "x-hub-signature-256"},
        {k: v for k, v in headers.items() if k != "x-github-delivery"},
    ):
        with pytest.raises(hooks.Rejected):
            hooks.verify_github(broken, body, "s3cret")


def test_versions_come_from_the_payload_or_the_template() -> None:
    release = {"action": "published", "release": {"tag_name": "v2.3.4"}}
    assert hooks.release_version(hooks.Provider.GITHUB, "release", release, None) == "2.3.4"
    run = {"action": "completed", "workflow_run": {"conclusion": "success", "run_number": 42}}
    assert hooks.should_act(hooks.Provider.GITHUB, "workflow_run", run, ("workflow_run",))
    assert (
        hooks.release_version(
            hooks.Provider.GITHUB, "workflow_run", run, "1.0.{workflow_run.run_number}"
        )
        == "1.0.42"
    )
    assert (
        hooks.release_version(hooks.Provider.GITHUB, "push", {"ref": "refs/heads/main"}, None)
        is None
    )
    failed = {"action": "completed", "workflow_run": {"conclusion": "failure"}}
    assert not hooks.should_act(hooks.Provider.GITHUB, "workflow_run", failed, ("workflow_run",))
    with pytest.raises(hooks.Rejected):
        hooks.release_version(hooks.Provider.GITHUB, "push", {}, "{head_commit.id}")
    with pytest.raises(hooks.Rejected):
        hooks.release_version(hooks.Provider.GENERIC, "generic", {"version": "bad version!"}, None)


def test_every_secret_comparison_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each form compares what was offered with what was expected through
    `hmac.compare_digest`, whether it matches or not; and nothing in the module compares a
    signature, token or secret with `==`/`!=` (which stops at the first differing byte)."""
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hooks.hmac, "compare_digest", recording)
    body, now = b'{"ref":"refs/tags/v1.0.0"}', time.time()
    stamp = str(int(now))
    signed_std = base64.b64encode(
        hmac.new(b"s3cret", f"m1.{stamp}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    signed_generic = hmac.new(b"s3cret", f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    forms = [
        lambda h: hooks.verify_github(h, body, "s3cret"),
        lambda h: hooks.verify_gitlab_token(h, "s3cret"),
        lambda h: hooks.verify_standard_webhook(h, body, "s3cret", now=now, max_age_seconds=300),
        lambda h: hooks.verify_generic(h, body, "s3cret", now=now, max_age_seconds=300),
    ]
    good: list[dict[str, str]] = [
        {"x-hub-signature-256": github_signature("s3cret", body), "x-github-delivery": "1"},
        {"x-gitlab-token": "s3cret", "x-gitlab-event-uuid": "2"},
        {"webhook-id": "m1", "webhook-timestamp": stamp, "webhook-signature": f"v1,{signed_std}"},
        {
            "x-cephalo-timestamp": stamp,
            "x-cephalo-signature": f"sha256={signed_generic}",
            "x-cephalo-delivery": "3",
        },
    ]
    for verify, headers in zip(forms, good, strict=True):
        compared.clear()
        verify(headers)
        assert compared, headers
        for name, value in headers.items():
            if value[-1].isalnum() and ("signature" in name or "token" in name):
                wrong = {**headers, name: value[:-1] + ("0" if value[-1] != "0" else "1")}
                compared.clear()
                with pytest.raises(hooks.Rejected):
                    verify(wrong)
                assert compared, name
    source = ast.parse(Path(hooks.__file__).read_text())
    secretive = ("signature", "token", "secret", "expected", "digest")
    for node in ast.walk(source):
        if isinstance(node, ast.Compare) and any(
            isinstance(op, ast.Eq | ast.NotEq) for op in node.ops
        ):
            names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            assert not any(word in name for name in names for word in secretive), ast.unparse(node)
