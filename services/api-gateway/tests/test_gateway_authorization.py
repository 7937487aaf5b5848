"""The authorization matrix: a user scoped to project A and environment Dev against objects
of project B, of Production and of another space, through the real gateway, release-service
and orchestrator; and every administration route refused to non-administrators."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from cephalo_gateway.app import create_app


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class World:
    space_id: str
    other_space: str
    project_a: dict[str, Any]
    project_b: dict[str, Any]
    project_c: dict[str, Any]
    dev: dict[str, Any]
    prod: dict[str, Any]
    release_a: dict[str, Any]
    release_b: dict[str, Any]
    deployment_a: dict[str, Any]
    deployment_b: dict[str, Any]
    task_a: str
    task_b: str
    user_id: str
    key: str
    team_id: str


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (
        response.request.method,
        response.request.url,
        response.text,
    )
    return response.json() if response.content else None


async def project(admin: httpx.AsyncClient, space: str, name: str) -> dict[str, Any]:
    created = await ok(
        await admin.post(f"/api/v1/spaces/{space}/projects", json={"name": name}), 201
    )
    step = {"name": "Hello", "target_roles": ["web"], "script_body": "echo hi"}
    await ok(
        await admin.put(
            f"/api/v1/spaces/{space}/projects/{created['id']}/deployment-process",
            json={"steps": [step]},
        )
    )
    return dict(created)


async def task_of(admin: httpx.AsyncClient, deployment_id: str) -> str:
    async with asyncio.timeout(15):
        while True:
            body = await ok(
                await admin.get(
                    "/api/v1/spaces/default/tasks", params={"deployment_id": deployment_id}
                )
            )
            items = body["items"] if isinstance(body, dict) else body
            if items:
                return str(items[0]["id"])
            await asyncio.sleep(0.1)


@pytest.fixture(scope="module")
async def world(stack: Any) -> World:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"X-Cephalo-Api-Key": stack.admin_key}, timeout=30
    ) as admin:
        space_id = (await ok(await admin.get("/api/v1/spaces/default")))["id"]
        slug = unique("other")
        await ok(await admin.post("/api/v1/spaces", json={"name": slug, "slug": slug}), 201)
        base = "/api/v1/spaces/default"
        dev = await ok(await admin.post(f"{base}/environments", json={"name": unique("Dev")}), 201)
        prod = await ok(
            await admin.post(f"{base}/environments", json={"name": unique("Prod")}), 201
        )
        a = await project(admin, "default", unique("A"))
        b = await project(admin, "default", unique("B"))
        c = await project(admin, slug, unique("C"))
        rel_a = await ok(
            await admin.post(f"{base}/projects/{a['id']}/releases", json={"version": "1.0.0"}), 201
        )
        rel_b = await ok(
            await admin.post(f"{base}/projects/{b['id']}/releases", json={"version": "1.0.0"}), 201
        )
        dep_a = await ok(
            await admin.post(
                f"{base}/deployments", json={"release_id": rel_a["id"], "environment_id": dev["id"]}
            ),
            201,
        )
        dep_b = await ok(
            await admin.post(
                f"{base}/deployments",
                json={"release_id": rel_b["id"], "environment_id": prod["id"]},
            ),
            201,
        )
        user = await ok(
            await admin.post(
                "/api/v1/users", json={"username": unique("scoped"), "is_service_account": True}
            ),
            201,
        )
        key = await ok(
            await admin.post(f"/api/v1/users/{user['id']}/api-keys", json={"purpose": "matrix"}),
            201,
        )
        team = await ok(
            await admin.post(
                "/api/v1/teams", json={"name": unique("Team A"), "member_user_ids": [user["id"]]}
            ),
            201,
        )
        await ok(
            await admin.post(
                f"/api/v1/teams/{team['id']}/role-assignments",
                json={
                    "role": "project-deployer",
                    "space_id": space_id,
                    "project_ids": [a["id"]],
                    "environment_ids": [dev["id"]],
                },
            ),
            201,
        )
        return World(
            space_id=space_id,
            other_space=slug,
            project_a=a,
            project_b=b,
            project_c=c,
            dev=dev,
            prod=prod,
            release_a=rel_a,
            release_b=rel_b,
            deployment_a=dep_a,
            deployment_b=dep_b,
            task_a=await task_of(admin, dep_a["id"]),
            task_b=await task_of(admin, dep_b["id"]),
            user_id=user["id"],
            key=key["key"],
            team_id=team["id"],
        )


@pytest.fixture
async def scoped(stack: Any, world: World) -> Any:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"X-Cephalo-Api-Key": world.key}, timeout=30
    ) as client:
        yield client


def matrix(w: World) -> list[tuple[str, str, dict[str, Any] | None, int]]:
    s = "/api/v1/spaces/default"
    o = f"/api/v1/spaces/{w.other_space}"
    a, b = w.project_a["id"], w.project_b["id"]
    step = {"steps": [{"name": "Hello", "target_roles": ["web"], "script_body": "echo again"}]}
    return [
        ("GET", f"{s}/projects/{a}", None, 200),
        ("GET", f"{s}/projects/{w.project_a['name']}", None, 200),
        ("GET", f"{s}/projects/{b}", None, 403),
        ("GET", f"{s}/projects/{w.project_b['name']}", None, 403),
        ("GET", f"{s}/projects/{a}/deployment-process", None, 200),
        ("GET", f"{s}/projects/{b}/deployment-process", None, 403),
        ("PUT", f"{s}/projects/{a}/deployment-process", step, 200),
        ("PUT", f"{s}/projects/{b}/deployment-process", step, 403),
        ("GET", f"{s}/projects/{a}/releases", None, 200),
        ("GET", f"{s}/projects/{b}/releases", None, 403),
        ("POST", f"{s}/projects/{a}/releases", {"version": "9.0.0"}, 403),
        ("GET", f"{s}/releases/{w.release_a['id']}", None, 200),
        ("GET", f"{s}/releases/{w.release_b['id']}", None, 403),
        ("GET", f"{s}/deployments/{w.deployment_a['id']}", None, 200),
        ("GET", f"{s}/deployments/{w.deployment_b['id']}", None, 403),
        (
            "POST",
            f"{s}/deployments",
            {"release_id": w.release_a["id"], "environment_id": w.prod["id"]},
            403,
        ),
        (
            "POST",
            f"{s}/deployments",
            {"release_id": w.release_b["id"], "environment_id": w.dev["id"]},
            403,
        ),
        ("POST", f"{s}/deployments/{w.deployment_b['id']}/redeploy", {}, 403),
        ("GET", f"{s}/environments/{w.dev['id']}", None, 200),
        ("GET", f"{s}/environments/{w.dev['name']}", None, 200),
        ("GET", f"{s}/environments/{w.prod['id']}", None, 403),
        ("PUT", f"{s}/environments/{w.dev['id']}", {"name": w.dev["name"]}, 403),
        ("POST", f"{s}/environments", {"name": unique("Nope")}, 403),
        ("POST", f"{s}/projects", {"name": unique("Nope")}, 403),
        ("GET", f"{s}/tasks/{w.task_a}", None, 200),
        ("GET", f"{s}/tasks/{w.task_a}/log", None, 200),
        ("GET", f"{s}/tasks/{w.task_b}", None, 403),
        ("GET", f"{s}/tasks/{w.task_b}/log", None, 403),
        ("GET", f"{s}/releases/{uuid.uuid4()}", None, 404),
        ("GET", o, None, 404),
        ("GET", f"{o}/projects", None, 404),
        ("GET", f"{o}/projects/{w.project_c['id']}", None, 404),
        ("GET", f"{o}/environments", None, 404),
        ("POST", "/api/v1/spaces", {"name": "Mine", "slug": unique("mine")}, 403),
    ]


async def test_a_scoped_user_reaches_only_project_a_in_dev(
    scoped: httpx.AsyncClient, world: World
) -> None:
    failures = []
    for method, path, body, expected in matrix(world):
        response = await scoped.request(method, path, json=body)
        if response.status_code != expected:
            failures.append((method, path, expected, response.status_code, response.text[:200]))
        elif expected >= 400:
            assert response.headers["content-type"] == "application/problem+json"
    assert not failures, failures


async def test_a_scoped_user_may_deploy_a_to_dev(scoped: httpx.AsyncClient, world: World) -> None:
    response = await scoped.post(
        "/api/v1/spaces/default/deployments",
        json={"release_id": world.release_a["id"], "environment_id": world.dev["id"]},
    )
    assert response.status_code == 201, response.text


async def test_lists_show_only_what_the_user_may_see(
    scoped: httpx.AsyncClient, world: World
) -> None:
    def items(response: httpx.Response) -> list[dict[str, Any]]:
        assert response.status_code == 200, response.text
        body = response.json()
        return list(body["items"] if isinstance(body, dict) else body)

    projects = items(await scoped.get("/api/v1/spaces/default/projects"))
    assert [p["id"] for p in projects] == [world.project_a["id"]]
    deployments = items(await scoped.get("/api/v1/spaces/default/deployments"))
    assert deployments and {d["project_id"] for d in deployments} == {world.project_a["id"]}
    assert {d["environment_id"] for d in deployments} == {world.dev["id"]}
    environments = items(await scoped.get("/api/v1/spaces/default/environments"))
    assert [e["id"] for e in environments] == [world.dev["id"]]
    spaces = items(await scoped.get("/api/v1/spaces"))
    assert [s["id"] for s in spaces] == [world.space_id]


async def test_my_permissions_says_what_the_user_may_do(
    scoped: httpx.AsyncClient, world: World
) -> None:
    mine = (await scoped.get("/api/v1/users/me/permissions")).json()
    assert mine["is_administrator"] is False
    assert [g["role"] for g in mine["grants"]] == ["project-deployer"]
    in_a_dev = (
        await scoped.get(
            "/api/v1/users/me/permissions",
            params={
                "space": world.space_id,
                "project": world.project_a["id"],
                "environment": world.dev["id"],
            },
        )
    ).json()
    assert (
        "DeploymentCreate" in in_a_dev["permissions"]
        and "ReleaseCreate" not in in_a_dev["permissions"]
    )
    in_b = (
        await scoped.get(
            "/api/v1/users/me/permissions",
            params={"space": world.space_id, "project": world.project_b["id"]},
        )
    ).json()
    assert in_b["permissions"] == []


def _admin_routes(stack: Any) -> list[tuple[str, str]]:
    """Every gateway-owned administration route, from the gateway's own OpenAPI."""
    document = create_app(stack.settings).openapi()
    routes = []
    for path, operations in document["paths"].items():
        if not path.startswith(
            ("/api/v1/users", "/api/v1/teams", "/api/v1/roles", "/api/v1/permissions")
        ):
            continue
        if path.startswith(("/api/v1/users/me", "/api/v1/users/login", "/api/v1/users/logout")):
            continue
        routes += [(method.upper(), path) for method in operations]
    return routes


async def test_every_administration_route_is_refused_to_non_administrators(
    scoped: httpx.AsyncClient, stack: Any, world: World
) -> None:
    routes = _admin_routes(stack)
    assert len(routes) >= 12, routes
    other_user = world.user_id
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"X-Cephalo-Api-Key": stack.admin_key}
    ) as admin:
        admin_id = (await admin.get("/api/v1/users/me")).json()["id"]
    values = {
        "user_ref": admin_id,
        "team_id": world.team_id,
        "key_id": str(uuid.uuid4()),
        "assignment_id": str(uuid.uuid4()),
    }
    bodies: dict[str, Any] = {
        "POST /api/v1/users": {"username": unique("x")},
        "POST /api/v1/teams": {"name": unique("x")},
        "PUT /api/v1/teams/{team_id}": {"description": "x"},
        "PATCH /api/v1/users/{user_ref}": {"is_active": False},
        "POST /api/v1/users/{user_ref}/api-keys": {"purpose": "steal"},
        "POST /api/v1/teams/{team_id}/role-assignments": {"role": "administrator"},
    }
    refused = []
    for method, template in routes:
        path = re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)
        response = await scoped.request(method, path, json=bodies.get(f"{method} {template}"))
        if response.status_code != 403:
            refused.append((method, template, response.status_code))
    assert not refused, refused
    assert other_user != admin_id
