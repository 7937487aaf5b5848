"""release-service through its HTTP API, on real Postgres and NATS."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import httpx

STEP_TEMPLATE = {"name": "Say hello", "target_roles": ["web"], "script_body": "echo hello"}
ProjectFactory = Callable[..., Awaitable[dict[str, object]]]


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_the_default_space_resolves_by_slug_and_by_id(client: httpx.AsyncClient) -> None:
    by_slug = (await client.get("/api/v1/spaces/default")).json()
    by_id = await client.get(f"/api/v1/spaces/{by_slug['id']}")
    assert by_id.json()["slug"] == "default" and by_slug["is_default"] is True


async def test_environment_names_are_unique_case_insensitively(client: httpx.AsyncClient) -> None:
    name = uid("Staging")
    first = await client.post("/api/v1/spaces/default/environments", json={"name": name})
    second = await client.post("/api/v1/spaces/default/environments", json={"name": name.upper()})
    assert first.status_code == 201
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["title"] == "Conflict"


async def test_environment_is_found_by_name(client: httpx.AsyncClient) -> None:
    name = uid("Production")
    await client.post("/api/v1/spaces/default/environments", json={"name": name})
    found = await client.get(f"/api/v1/spaces/default/environments/{name.lower()}")
    assert found.status_code == 200 and found.json()["name"] == name


async def test_a_malformed_body_is_a_problem_with_field_errors(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/spaces/default/environments", json={"name": "", "extra": 1}
    )
    assert response.status_code == 422
    fields = {error["field"] for error in response.json()["errors"]}
    assert {"body.name", "body.extra"} <= fields


async def test_an_unknown_space_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/spaces/nowhere/environments")
    assert response.status_code == 404
    assert response.json()["detail"] == "space 'nowhere' was not found"


async def test_an_id_from_another_space_never_resolves(client: httpx.AsyncClient) -> None:
    slug = uid("other")
    assert (
        await client.post("/api/v1/spaces", json={"name": slug, "slug": slug})
    ).status_code == 201
    env = (await client.post(f"/api/v1/spaces/{slug}/environments", json={"name": "Dev"})).json()
    assert (await client.get(f"/api/v1/spaces/{slug}/environments/{env['id']}")).status_code == 200
    assert (await client.get(f"/api/v1/spaces/default/environments/{env['id']}")).status_code == 404


async def test_a_stale_process_version_is_a_conflict(
    client: httpx.AsyncClient, new_project: ProjectFactory
) -> None:
    project = await new_project()
    url = f"/api/v1/spaces/default/projects/{project['id']}/deployment-process"
    current = (await client.get(url)).json()
    assert (
        await client.put(url, json={"version": current["version"], "steps": [dict(STEP_TEMPLATE)]})
    ).status_code == 200
    stale = await client.put(
        url, json={"version": current["version"], "steps": [dict(STEP_TEMPLATE)]}
    )
    assert stale.status_code == 409


async def test_a_step_needs_a_role_and_a_script(
    client: httpx.AsyncClient, new_project: ProjectFactory
) -> None:
    project = await new_project()
    url = f"/api/v1/spaces/default/projects/{project['id']}/deployment-process"
    bad = await client.put(
        url, json={"steps": [{"name": "x", "target_roles": [], "script_body": ""}]}
    )
    assert bad.status_code == 422


async def test_a_release_snapshots_the_process(
    client: httpx.AsyncClient, new_project: ProjectFactory
) -> None:
    project = await new_project()
    base = f"/api/v1/spaces/default/projects/{project['id']}"
    release = (await client.post(f"{base}/releases", json={"version": "1.0.0"})).json()
    await client.put(
        f"{base}/deployment-process",
        json={"steps": [{**dict(STEP_TEMPLATE), "script_body": "echo changed"}]},
    )
    again = (await client.get(f"/api/v1/spaces/default/releases/{release['id']}")).json()
    assert again["steps"][0]["actions"][0]["properties"]["script_body"] == "echo hello"


async def test_release_versions_are_unique_per_project(
    client: httpx.AsyncClient, new_project: ProjectFactory
) -> None:
    project = await new_project()
    url = f"/api/v1/spaces/default/projects/{project['id']}/releases"
    assert (await client.post(url, json={"version": "2.0.0-beta.1"})).status_code == 201
    assert (await client.post(url, json={"version": "2.0.0-BETA.1"})).status_code == 409


async def test_a_project_without_steps_cannot_be_released(
    client: httpx.AsyncClient, new_project: ProjectFactory
) -> None:
    project = await new_project(steps=[])
    url = f"/api/v1/spaces/default/projects/{project['id']}/releases"
    response = await client.post(url, json={"version": "1.0.0"})
    assert response.status_code == 422


async def test_deploying_to_an_unknown_environment_is_not_found(
    client: httpx.AsyncClient, new_project: ProjectFactory
) -> None:
    project = await new_project()
    release = (
        await client.post(
            f"/api/v1/spaces/default/projects/{project['id']}/releases", json={"version": "1.0"}
        )
    ).json()
    response = await client.post(
        "/api/v1/spaces/default/deployments",
        json={"release_id": release["id"], "environment_id": str(uuid.uuid4())},
    )
    assert response.status_code == 404


async def test_probes_answer(client: httpx.AsyncClient) -> None:
    assert (await client.get("/livez")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert "cephalo_http_requests_total" in (await client.get("/metrics")).text
