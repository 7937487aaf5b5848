"""Every operation of the merged OpenAPI document against the whole stack (five services as
real processes): a user scoped to project A / environment Dev gets 404 on another space, 403
on project B / Production, 200 on what its grant covers, 403 on system administration; and
every mutating request, refused or not, leaves exactly one audit entry without secrets."""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url

from cephalo_common.embedded import _pg_bin
from cephalo_dev.stack import Stack
from cephalo_gateway.domain.permissions import BUILT_IN_ROLES, Kind, requirement_for

pytestmark = pytest.mark.timeout(420)

ROLE = "project-deployer"
MUTATING = ("POST", "PUT", "PATCH", "DELETE")
PASSWORD = "matrix password " + uuid.uuid4().hex
PATH_KINDS = {
    "project": Kind.PROJECT,
    "environment": Kind.ENVIRONMENT,
    "release_id": Kind.RELEASE,
    "deployment_id": Kind.DEPLOYMENT,
    "task_id": Kind.TASK,
}
SPACE_PARAMS = ("space", "space_id")
OPEN_SYSTEM_ROUTES = {
    ("GET", "/api/v1"): 200,
    ("GET", "/api/v1/users/me"): 200,
    ("GET", "/api/v1/users/me/permissions"): 200,
    ("GET", "/api/v1/spaces"): 200,
    ("GET", "/api/v1/server-certificate"): 200,
    ("GET", "/api/v1/audit-events/categories"): 200,
    ("POST", "/api/v1/hooks/{hook_id}"): 404,
    ("POST", "/api/v1/users/login"): 422,
    ("POST", "/api/v1/users/logout"): 204,
    ("GET", "/api/v1/webhooks"): 200,
    ("DELETE", "/api/v1/webhooks/{hook_id}"): 404,
}
"""Routes outside spaces that any signed-in user may call (the hook and login routes take no
key; an unknown hook is 404, a login without a body 422; webhooks are managed per space and
listed filtered, an unknown one is 404). Every other one is administration: 403."""
SYSTEM_BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/api/v1/users/{user_ref}"): {"is_active": False},
    ("POST", "/api/v1/users/{user_ref}/api-keys"): {"purpose": "steal"},
    ("POST", "/api/v1/users"): {"username": "intruder"},
    ("POST", "/api/v1/teams"): {"name": "intruders"},
    ("PUT", "/api/v1/teams/{team_id}"): {"description": "x"},
    ("POST", "/api/v1/teams/{team_id}/role-assignments"): {"role": "administrator"},
    ("POST", "/api/v1/webhooks"): {
        "name": "h",
        "space": "default",
        "provider": "github",
        "action": "create-release",
        "project": "p",
        "service_account_id": str(uuid.UUID(int=1)),
    },
}
"""Bodies that pass validation, so the refusal itself is what answers."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class World:
    space_id: str
    other_space_id: str
    a: dict[str, str]
    b: dict[str, str]
    scoped_key: str
    admin_key: str


async def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, (response.request.url, response.text)
    return response.json() if response.content else None


async def _project(admin: httpx.AsyncClient, name: str) -> str:
    base = "/api/v1/spaces/default/projects"
    created = await ok(await admin.post(base, json={"name": name}), 201)
    step = {"name": "Hello", "target_roles": ["web"], "script_body": "echo hi"}
    await ok(await admin.put(f"{base}/{created['id']}/deployment-process", json={"steps": [step]}))
    return str(created["id"])


async def _deploy(admin: httpx.AsyncClient, project: str, environment: str) -> dict[str, str]:
    base = "/api/v1/spaces/default"
    release = await ok(
        await admin.post(f"{base}/projects/{project}/releases", json={"version": "1.0.0"}), 201
    )
    body = {"release_id": release["id"], "environment_id": environment}
    deployment = await ok(await admin.post(f"{base}/deployments", json=body), 201)
    async with asyncio.timeout(30):
        while True:
            params = {"deployment_id": deployment["id"]}
            tasks = await ok(await admin.get(f"{base}/tasks", params=params))
            items = tasks["items"] if isinstance(tasks, dict) else tasks
            if items:
                break
            await asyncio.sleep(0.2)
    return {
        "project": project,
        "environment": environment,
        "release_id": str(release["id"]),
        "deployment_id": str(deployment["id"]),
        "task_id": str(items[0]["id"]),
    }


async def _scoped_key(admin: httpx.AsyncClient, space_id: str, a: dict[str, str]) -> str:
    user = await ok(
        await admin.post(
            "/api/v1/users",
            json={"username": unique("scoped"), "password": PASSWORD},
        ),
        201,
    )
    key = await ok(
        await admin.post(f"/api/v1/users/{user['id']}/api-keys", json={"purpose": "matrix"}), 201
    )
    team = await ok(
        await admin.post(
            "/api/v1/teams", json={"name": unique("A in Dev"), "member_user_ids": [user["id"]]}
        ),
        201,
    )
    assignment = {
        "role": ROLE,
        "space_id": space_id,
        "project_ids": [a["project"]],
        "environment_ids": [a["environment"]],
    }
    await ok(await admin.post(f"/api/v1/teams/{team['id']}/role-assignments", json=assignment), 201)
    return str(key["key"])


@pytest.fixture(scope="module")
async def world(whole_stack: Stack) -> World:
    async with httpx.AsyncClient(
        base_url=whole_stack.gateway_url, headers=whole_stack.auth_headers, timeout=60
    ) as admin:
        space_id = (await ok(await admin.get("/api/v1/spaces/default")))["id"]
        slug = unique("other")
        other = await ok(await admin.post("/api/v1/spaces", json={"name": slug, "slug": slug}), 201)
        base = "/api/v1/spaces/default/environments"
        dev = (await ok(await admin.post(base, json={"name": unique("Dev")}), 201))["id"]
        prod = (await ok(await admin.post(base, json={"name": unique("Prod")}), 201))["id"]
        a = await _deploy(admin, await _project(admin, unique("A")), dev)
        b = await _deploy(admin, await _project(admin, unique("B")), prod)
        key = await _scoped_key(admin, space_id, a)
        return World(space_id, str(other["id"]), a, b, key, whole_stack.api_key)


@pytest.fixture(scope="module")
def operations(merged_openapi: dict[str, Any]) -> list[tuple[str, str]]:
    document = merged_openapi
    found = [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method.upper() in ("GET", *MUTATING) and not _needs_query(operation)
    ]
    assert len(found) >= 125, "every service's routes are in the merged document"
    return found


def _needs_query(operation: dict[str, Any]) -> bool:
    """Left out: the matrix sends no query strings (the service would answer 422 first)."""
    parameters = operation.get("parameters", [])
    return any(p.get("in") == "query" and p.get("required") for p in parameters)


def _params(template: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", template)


def _fill(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), str(uuid.uuid4())), template)


def _requirement(method: str, path: str) -> Any:
    return requirement_for(method, path.removeprefix("/api/v1/").split("/"))


ROLE_PERMISSIONS = BUILT_IN_ROLES[ROLE].permissions


def _body_for(method: str, template: str, objects: dict[str, str], dev: str) -> Any:
    """The body fields a rule reads to find the objects a write touches."""
    if method != "POST":
        return None
    if template.endswith("/deployments"):
        return {"release_id": objects["release_id"], "environment_id": dev}
    if template.endswith("/deployments/rollback"):
        return {"project": objects["project"], "environment": dev}
    if template.endswith("/deployment-plans"):
        return {"project_id": objects["project"], "environment_id": dev}
    return {}


def expected_on_b(method: str, template: str, w: World) -> int | None:
    """403 where the user's permission is missing or the path or body names B/Production;
    None where the operation names no object of B (lists, filtered elsewhere)."""
    path = _fill(template, {"space": w.space_id, "space_id": w.space_id, **w.b})
    requirement = _requirement(method, path)
    assert requirement is not None, (method, template)
    if requirement.permission is None:
        return None
    if requirement.permission not in ROLE_PERMISSIONS:
        return 403
    names_b = any(p in PATH_KINDS for p in _params(template)) or bool(requirement.body)
    return 403 if names_b else None


def expected_on_a(method: str, template: str, w: World) -> int | None:
    """200 for reads the grant covers whose every parameter is an object of A in Dev."""
    if method != "GET" or not all(p in PATH_KINDS or p in SPACE_PARAMS for p in _params(template)):
        return None
    path = _fill(template, {"space": w.space_id, "space_id": w.space_id, **w.a})
    requirement = _requirement(method, path)
    if requirement is None or (
        requirement.permission is not None and requirement.permission not in ROLE_PERMISSIONS
    ):
        return None
    return 200


@dataclass
class Sent:
    request_id: str
    method: str
    template: str
    status: int


class Caller:
    """Sends each request with a fresh request id and remembers what came back."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.sent: list[Sent] = []

    async def __call__(self, method: str, template: str, path: str, body: Any) -> int:
        request_id = unique("matrix")
        response = await self.client.request(
            method, path, json=body, headers={"X-Request-Id": request_id}
        )
        self.sent.append(Sent(request_id, method, template, response.status_code))
        return response.status_code


@pytest.fixture(scope="module")
async def scoped(whole_stack: Stack, world: World) -> AsyncIterator[Caller]:
    async with httpx.AsyncClient(
        base_url=whole_stack.gateway_url,
        headers={"X-Cephalo-Api-Key": world.scoped_key},
        timeout=60,
    ) as client:
        yield Caller(client)


@pytest.fixture(scope="module")
async def admin(whole_stack: Stack) -> AsyncIterator[Caller]:
    async with httpx.AsyncClient(
        base_url=whole_stack.gateway_url, headers=whole_stack.auth_headers, timeout=60
    ) as client:
        yield Caller(client)


def _in_space(template: str) -> bool:
    return any(p in SPACE_PARAMS for p in _params(template))


async def test_another_space_is_not_found_on_every_space_route(
    scoped: Caller, world: World, operations: list[tuple[str, str]]
) -> None:
    wrong = []
    other = {"space": world.other_space_id, "space_id": world.other_space_id, **world.a}
    for method, template in operations:
        if _in_space(template):
            status = await scoped(method, template, _fill(template, other), {})
            if status != 404:
                wrong.append((method, template, status))
    assert not wrong, wrong


async def test_project_b_and_production_are_forbidden_on_every_route_naming_them(
    scoped: Caller, world: World, operations: list[tuple[str, str]]
) -> None:
    wrong, checked = [], 0
    values = {"space": world.space_id, "space_id": world.space_id, **world.b}
    for method, template in operations:
        if not _in_space(template) or (expected := expected_on_b(method, template, world)) is None:
            continue
        checked += 1
        body = _body_for(method, template, world.b, world.a["environment"])
        status = await scoped(method, template, _fill(template, values), body)
        if status != expected:
            wrong.append((method, template, expected, status))
    assert not wrong, wrong
    assert checked >= 80, checked


async def test_what_the_grant_covers_is_readable(
    scoped: Caller, world: World, operations: list[tuple[str, str]]
) -> None:
    wrong, checked = [], 0
    values = {"space": world.space_id, "space_id": world.space_id, **world.a}
    for method, template in operations:
        if not _in_space(template) or (expected := expected_on_a(method, template, world)) is None:
            continue
        checked += 1
        status = await scoped(method, template, _fill(template, values), None)
        if status != expected:
            wrong.append((method, template, expected, status))
    assert not wrong, wrong
    assert checked >= 15, checked


async def test_system_administration_is_refused_to_non_administrators(
    scoped: Caller, world: World, operations: list[tuple[str, str]]
) -> None:
    wrong, administration = [], 0
    for method, template in operations:
        if _in_space(template):
            continue
        expected = OPEN_SYSTEM_ROUTES.get((method, template), 403)
        administration += expected == 403
        body = SYSTEM_BODIES.get((method, template))
        status = await scoped(method, template, _fill(template, {}), body)
        if status != expected:
            wrong.append((method, template, expected, status))
    assert not wrong, wrong
    assert administration >= 15, administration


async def test_every_mutating_route_is_audited_once_by_the_administrator_too(
    admin: Caller, operations: list[tuple[str, str]]
) -> None:
    """Unknown ids everywhere: the answers are 4xx, never 5xx, and each is audited."""
    errors = []
    for method, template in operations:
        if method in MUTATING:
            values = {"space": "default", "space_id": "default"}
            status = await admin(method, template, _fill(template, values), {})
            if status >= 500:
                errors.append((method, template, status))
    assert not errors, errors


HOSTILE_INPUTS: list[tuple[str, str, Any]] = [
    ("GET", "/api/v1/spaces/default/environments/%00", None),
    ("POST", "/api/v1/spaces/default/environments", {"name": "a\u0000b"}),
    ("POST", "/api/v1/spaces/default/%00", {}),
    ("POST", "/api/v1/spaces/%00/environments", {}),
    ("GET", "/api/v1/spaces/%2e%2e/environments", None),
    ("GET", "/api/v1/spaces/default/environments/%2e%2e", None),
    ("GET", "/api/v1/spaces/default/projects?limit=999999999999999999999", None),
    ("POST", "/api/v1/users", {"username": "u\u0000"}),
    ("GET", "/api/v1/audit-events?user=%00", None),
    ("POST", "/api/default/releases/create/v1", {"ProjectName": "\u0000", "ReleaseVersion": "1"}),
]


async def test_hostile_input_is_a_client_error_and_still_audited(admin: Caller) -> None:
    """NUL characters, dot segments and out-of-range numbers: never 5xx (an overlong limit is
    clamped, the rest are 4xx); mutating ones are recorded like any other (checked with the
    rest by the audit test)."""
    wrong = []
    for method, path, body in HOSTILE_INPUTS:
        status = await admin(method, path, path, body)
        if status >= 500:
            wrong.append((method, path, status))
    assert not wrong, wrong


def pg(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def test_each_mutating_request_left_exactly_one_audit_entry_without_secrets(
    whole_stack: Stack, world: World, scoped: Caller, admin: Caller
) -> None:
    """Runs after the tests above (file order) and checks every request they sent."""
    sent = [s for s in scoped.sent + admin.sent if s.method in MUTATING]
    mutating_routes = {(s.method, s.template) for s in admin.sent}
    assert len(sent) >= 100 and len(mutating_routes) >= 60
    connection = await asyncpg.connect(pg(whole_stack.database_url))
    try:
        rows = await connection.fetch(
            "SELECT request_id, count(*) AS n FROM gateway.audit_events"
            " WHERE request_id = ANY($1::text[]) GROUP BY request_id",
            [s.request_id for s in sent],
        )
        audit_text = "\n".join(
            str(dict(r)) for r in await connection.fetch("SELECT * FROM gateway.audit_events")
        )
    finally:
        await connection.close()
    counts = {row["request_id"]: row["n"] for row in rows}
    wrong = [(s.method, s.template, s.status, counts.get(s.request_id, 0)) for s in sent]
    assert not [w for w in wrong if w[3] != 1], [w for w in wrong if w[3] != 1]
    for secret in _secrets(world):
        assert secret not in audit_text


def _secrets(world: World) -> Iterator[str]:
    yield PASSWORD
    for key in (world.scoped_key, world.admin_key):
        yield key
        yield key.removeprefix("API-")


def test_a_dump_of_the_stack_database_holds_no_key_or_password(
    whole_stack: Stack, world: World
) -> None:
    """pg_dump of the database every service of the stack keeps its schema in."""
    dump = subprocess.run(
        [str(_pg_bin() / "pg_dump"), "--no-owner", pg(whole_stack.database_url)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    assert "gateway.api_keys" in dump and "gateway.users" in dump
    for secret in _secrets(world):
        assert secret not in dump
