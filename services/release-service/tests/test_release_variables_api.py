"""Project variables and library variable sets through the HTTP API: concurrency, save-time
validation, write-only sensitive values, release snapshots and the deployment event."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_common.contracts import DEPLOYMENT_REQUESTED, DeploymentRequestedV1
from cephalo_common.db.engine import create_engine, create_sessionmaker
from cephalo_common.messaging.envelope import Envelope
from cephalo_release.db.models import OutboxEvent
from cephalo_release.settings import ReleaseSettings

SECRET = "hunter2-correct-horse"
SpaceApi = Any
"""conftest's `SpaceApi` (test modules cannot import conftest under importlib mode)."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return dict(response.json())


@pytest.fixture
async def sessions(
    release_settings: ReleaseSettings,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = create_engine(release_settings.database, application_name="release-vars-tests")
    yield create_sessionmaker(engine)
    await engine.dispose()


async def put_vars(
    api: SpaceApi, project: dict[str, Any], variables: list[dict[str, Any]], **fields: Any
) -> Any:
    current = await api.ok("GET", f"/projects/{project['id']}/variables")
    body = {"version": current["version"], "variables": variables, **fields}
    return await api.request("PUT", f"/projects/{project['id']}/variables", json=body)


async def test_project_variables_round_trip_with_etag_and_stale_version(api: SpaceApi) -> None:
    project = await api.project()
    first = await api.request("GET", f"/projects/{project['id']}/variables")
    assert first.status_code == 200 and first.headers["ETag"] == '"1"'
    assert first.json()["variables"] == []
    saved = await put_vars(
        api,
        project,
        [
            {"name": "Greeting", "value": "Hello #{Name}"},
            {"name": "Name", "value": "World", "description": "who"},
            {"name": "Cert", "type": "Certificate", "value": "Certificates-1"},
        ],
    )
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["version"] == 2 and saved.headers["ETag"] == '"2"'
    assert [v["name"] for v in body["variables"]] == ["Greeting", "Name", "Cert"]
    assert all(v["id"] for v in body["variables"])
    stale = await api.request(
        "PUT",
        f"/projects/{project['id']}/variables",
        json={"version": 1, "variables": []},
    )
    problem(stale, 409)
    by_header = await api.request(
        "PUT",
        f"/projects/{project['id']}/variables",
        json={"variables": body["variables"][:1]},
        headers={"If-Match": '"2"'},
    )
    assert by_header.status_code == 200, by_header.text
    assert [v["name"] for v in by_header.json()["variables"]] == ["Greeting"]
    problem(
        await api.request("PUT", f"/projects/{project['id']}/variables", json={"variables": []}),
        428,
    )


async def test_unknown_project_or_one_from_another_space_is_404(
    api: SpaceApi, other_space: SpaceApi
) -> None:
    project = await api.project()
    problem(await other_space.request("GET", f"/projects/{project['id']}/variables"), 404)
    problem(
        await other_space.request(
            "PUT", f"/projects/{project['id']}/variables", json={"version": 1, "variables": []}
        ),
        404,
    )
    problem(await api.request("GET", f"/projects/{uuid.uuid4()}/variables"), 404)
    problem(await other_space.request("GET", f"/projects/{project['id']}/variables/preview"), 404)


@pytest.mark.parametrize(
    ("variable", "code", "position"),
    [
        ({"name": "A", "value": "x #{if Ready}yes"}, "unterminated_block", 2),
        ({"name": "A", "value": "#{Name | NoSuchFilter}"}, "unknown_filter", 9),
        ({"name": "A", "value": "x" * (1024 * 1024 + 1)}, "template_too_large", 256 * 1024),
        ({"name": "Bad#{Name", "value": "x"}, "illegal_character", 3),
    ],
)
async def test_bad_templates_and_names_are_422_with_position_and_reason(
    api: SpaceApi, variable: dict[str, Any], code: str, position: int
) -> None:
    project = await api.project()
    body = problem(await put_vars(api, project, [{"name": "Ok", "value": "1"}, variable]), 422)
    error = body["errors"][0]
    assert error["code"] == code, body
    assert error["position"] == position and error["line"] == 1
    assert error["field"].startswith("variables.1.")
    assert "variables.1." in body["detail"]
    after = await api.ok("GET", f"/projects/{project['id']}/variables")
    assert after["version"] == 1 and after["variables"] == []


async def test_a_self_reference_cycle_is_422_naming_the_loop(api: SpaceApi) -> None:
    project = await api.project()
    body = problem(
        await put_vars(
            api,
            project,
            [
                {"name": "Foo", "value": "a #{Bar}"},
                {"name": "Bar", "value": "#{Baz}"},
                {"name": "Baz", "value": "#{Foo}", "scope": {"Machine": ["web-01"]}},
            ],
        ),
        422,
    )
    cycle = next(e for e in body["errors"] if e["code"] == "cycle")
    assert "self referencing loop" in cycle["message"]
    assert "Foo" in cycle["message"] and "Bar" in cycle["message"]


async def test_other_invalid_variables_are_422(api: SpaceApi) -> None:
    project = await api.project()
    same_scope = [{"name": "X", "value": "1"}, {"name": "x", "value": "2"}]
    problem(await put_vars(api, project, same_scope), 422)
    problem(await put_vars(api, project, [{"id": "nope", "name": "X", "value": "1"}]), 422)
    problem(
        await put_vars(api, project, [{"name": "X", "scope": {"Environment": ["Nowhere"]}}]), 422
    )
    problem(await put_vars(api, project, [{"name": "X", "scope": {"Colour": ["red"]}}]), 422)
    problem(await put_vars(api, project, [{"name": "X", "type": "Number"}]), 422)
    problem(await put_vars(api, project, [{"name": "X", "value": "1", "extra": 1}]), 422)
    problem(await put_vars(api, project, [], library_variable_sets=["missing-set"]), 404)
    problem(await put_vars(api, project, [{"name": "X", "value": "a\x00b"}]), 422)
    problem(await api.request("POST", "/library-variable-sets", json={"name": "a\x00"}), 422)
    problem(await api.request("GET", "/library-variable-sets/a%00"), 422)
    preview = f"/projects/{project['id']}/variables/preview"
    problem(await api.request("GET", preview, params={"environment": "a\x00"}), 422)


async def test_scopes_take_environment_and_channel_names_and_store_ids(api: SpaceApi) -> None:
    env = await api.environment("Production")
    project = await api.project()
    saved = await put_vars(
        api,
        project,
        [
            {
                "name": "X",
                "value": "1",
                "scope": {"Environment": ["production"], "Channel": ["Default"]},
            }
        ],
    )
    assert saved.status_code == 200, saved.text
    scope = saved.json()["variables"][0]["scope"]
    assert scope["Environment"] == [env["id"]]
    assert len(scope["Channel"]) == 1 and uuid.UUID(scope["Channel"][0])


async def test_library_sets_crud_conflicts_and_scope_limits(
    api: SpaceApi, other_space: SpaceApi
) -> None:
    name = unique("Common")
    created = await api.request(
        "POST",
        "/library-variable-sets",
        json={"name": name, "variables": [{"name": "A", "value": "1"}]},
    )
    assert created.status_code == 201, created.text
    library = created.json()
    assert library["version"] == 1 and created.headers["ETag"] == '"1"'
    problem(await api.request("POST", "/library-variable-sets", json={"name": name.upper()}), 409)
    for field in ("Action", "Channel"):
        body = problem(
            await api.request(
                "POST",
                "/library-variable-sets",
                json={"name": unique("L"), "variables": [{"name": "A", "scope": {field: ["x"]}}]},
            ),
            422,
        )
        assert f"cannot be scoped to {field}" in body["detail"]
    problem(await other_space.request("GET", f"/library-variable-sets/{library['id']}"), 404)
    problem(
        await other_space.request(
            "PUT", f"/library-variable-sets/{library['id']}", json={"name": "x", "version": 1}
        ),
        404,
    )
    got = await api.ok("GET", f"/library-variable-sets/{library['slug']}")
    assert got["id"] == library["id"]
    updated = await api.ok(
        "PUT",
        f"/library-variable-sets/{library['id']}",
        json={"name": name, "version": 1, "variables": got["variables"] + [{"name": "B"}]},
    )
    assert updated["version"] == 2 and len(updated["variables"]) == 2
    problem(
        await api.request(
            "PUT", f"/library-variable-sets/{library['id']}", json={"name": name, "version": 1}
        ),
        409,
    )
    taken = await api.ok("POST", "/library-variable-sets", 201, json={"name": unique("Taken")})
    problem(
        await api.request(
            "PUT",
            f"/library-variable-sets/{library['id']}",
            json={"name": taken["name"].lower(), "version": 2, "variables": got["variables"]},
        ),
        409,
    )
    problem(await other_space.request("DELETE", f"/library-variable-sets/{library['id']}"), 404)
    listed = await api.ok("GET", "/library-variable-sets", params={"partial_name": name[-8:]})
    assert [item["id"] for item in listed["items"]] == [library["id"]]
    project = await api.project()
    included = await put_vars(api, project, [], library_variable_sets=[name])
    assert included.json()["library_variable_sets"] == [{"id": library["id"], "name": name}]
    problem(await api.request("DELETE", f"/library-variable-sets/{library['id']}"), 409)
    await put_vars(api, project, [])
    deleted = await api.request("DELETE", f"/library-variable-sets/{library['id']}")
    assert deleted.status_code == 204
    problem(await api.request("GET", f"/library-variable-sets/{library['id']}"), 404)


async def test_sensitive_values_are_write_only_and_kept_by_id(api: SpaceApi) -> None:
    project = await api.project()
    saved = await put_vars(
        api, project, [{"name": "Password", "type": "Sensitive", "value": SECRET}]
    )
    assert saved.status_code == 200, saved.text
    assert SECRET not in saved.text
    variable = saved.json()["variables"][0]
    assert variable["value"] is None and variable["has_value"] and variable["is_sensitive"]
    kept = await put_vars(
        api, project, [{"id": variable["id"], "name": "Password", "type": "Sensitive"}]
    )
    assert kept.json()["variables"][0]["has_value"] is True
    fresh = await put_vars(api, project, [{"name": "Password", "type": "Sensitive"}])
    assert fresh.json()["variables"][0]["has_value"] is False


async def test_a_release_keeps_its_snapshot_and_update_variables_changes_only_variables(
    api: SpaceApi,
) -> None:
    library = await api.ok(
        "POST",
        "/library-variable-sets",
        201,
        json={"name": unique("Lib"), "variables": [{"name": "Shared", "value": "lib-1"}]},
    )
    project = await api.project()
    await put_vars(
        api,
        project,
        [{"name": "Url", "value": "v1"}, {"name": "Key", "type": "Sensitive", "value": SECRET}],
        library_variable_sets=[library["id"]],
    )
    release = await api.release(project)
    snapshot = await api.ok("GET", f"/releases/{release['id']}/variables")
    assert {v["name"]: v["value"] for v in snapshot["variables"]} == {
        "Url": "v1",
        "Key": None,
        "Shared": "lib-1",
    }
    assert [s["id"] for s in snapshot["library_sets"]] == [library["id"]]

    await put_vars(api, project, [{"name": "Url", "value": "v2"}], library_variable_sets=[])
    await api.ok(
        "PUT",
        f"/projects/{project['id']}/deployment-process",
        json={"steps": [{"name": "Other", "target_roles": ["db"], "script_body": "echo 2"}]},
    )
    again = await api.ok("GET", f"/releases/{release['id']}/variables")
    assert again == snapshot
    before = await api.ok("GET", f"/releases/{release['id']}")

    updated = await api.ok("POST", f"/releases/{release['id']}/snapshot-variables")
    assert {v["name"]: v["value"] for v in updated["variables"]} == {"Url": "v2"}
    assert updated["library_sets"] == []
    after = await api.ok("GET", f"/releases/{release['id']}")
    assert after == before
    assert after["steps"][0]["name"] == release["steps"][0]["name"]


async def test_snapshot_endpoints_404_for_another_space(
    api: SpaceApi, other_space: SpaceApi
) -> None:
    project = await api.project()
    release = await api.release(project)
    for method, path in (
        ("GET", f"/releases/{release['id']}/variables"),
        ("POST", f"/releases/{release['id']}/snapshot-variables"),
        ("GET", f"/releases/{release['id']}/variables/preview"),
        ("POST", f"/releases/{uuid.uuid4()}/snapshot-variables"),
    ):
        problem(await other_space.request(method, path), 404)
    release_preview = f"/releases/{release['id']}/variables/preview"
    problem(await api.request("GET", release_preview, params={"machine": "m\x00"}), 422)
    problem(
        await api.request(
            "GET", f"/releases/{release['id']}/variables/preview", params={"environment": "nope"}
        ),
        404,
    )


async def _requested(
    settings: ReleaseSettings, space_id: str, deployment_id: str
) -> DeploymentRequestedV1:
    """The event as the bus delivered it (the outbox row keeps no data once published)."""
    client = await nats.connect(settings.nats.url)
    try:
        subject = DEPLOYMENT_REQUESTED.subject(space_id)
        sub = await client.jetstream().subscribe(subject, ordered_consumer=True)
        async with asyncio.timeout(15):
            while True:
                with contextlib.suppress(nats.errors.TimeoutError):
                    envelope = Envelope.from_bytes((await sub.next_msg(timeout=1)).data)
                    if envelope.data["deployment_id"] == deployment_id:
                        return envelope.payload(DeploymentRequestedV1)
    finally:
        await client.close()


async def _wait_until_outbox_forgets(
    sessions: async_sessionmaker[AsyncSession], secret: str
) -> None:
    """Published rows are wiped by the relay's transaction, just after the bus got them."""
    statement = select(OutboxEvent.payload).where(OutboxEvent.type.like("%deployment.requested%"))
    async with asyncio.timeout(15):
        while True:
            async with sessions() as session:
                payloads = (await session.execute(statement)).scalars().all()
            if payloads and all(secret.encode() not in payload for payload in payloads):
                return
            await asyncio.sleep(0.1)


async def test_the_deployment_event_carries_values_and_prompted_answers(
    api: SpaceApi,
    sessions: async_sessionmaker[AsyncSession],
    release_settings: ReleaseSettings,
) -> None:
    env = await api.environment()
    library = await api.ok(
        "POST",
        "/library-variable-sets",
        201,
        json={"name": unique("Lib"), "variables": [{"name": "Region", "value": "eu"}]},
    )
    project = await api.project()
    await put_vars(
        api,
        project,
        [
            {"name": "Url", "value": "https://#{Region}", "scope": {"Environment": [env["id"]]}},
            {"name": "Password", "type": "Sensitive", "value": SECRET},
            {"name": "Approver", "prompt": {"label": "Who approves?", "required": True}},
            {"name": "Note", "value": "none", "prompt": {"label": "Note", "required": True}},
        ],
        library_variable_sets=[library["id"]],
    )
    release = await api.release(project)
    missing = problem(await api.deploy(release, env), 422)
    assert "Who approves?" in missing["detail"]
    problem(await api.deploy(release, env, prompted_variables={"Nope": "x"}), 422)
    created = await api.deploy(release, env, prompted_variables={"approver": "alice"})
    assert created.status_code == 201, created.text
    assert "alice" not in created.text
    event = await _requested(release_settings, api.id, created.json()["id"])
    assert event.options.prompted_values == {"Approver": "alice"}
    values = {v.name: v for v in event.variable_values}
    assert values["Password"].value == SECRET and values["Password"].is_sensitive
    assert values["Url"].scope == {"Environment": frozenset({env["id"]})}
    assert values["Region"].source.kind == "library_set"
    assert values["Region"].source.id == library["id"]
    assert values["Note"].declaration_index == 3

    redeployed = await api.request("POST", f"/deployments/{created.json()['id']}/redeploy", json={})
    assert redeployed.status_code == 201, redeployed.text
    again = await _requested(release_settings, api.id, redeployed.json()["id"])
    assert again.options.prompted_values == {"Approver": "alice"}
    assert json.dumps(again.model_dump(mode="json")).count(SECRET) == 1
    await _wait_until_outbox_forgets(sessions, SECRET)
