"""Octopus's build-server endpoints, as Octopus's own clients call them.

Errors are `{"ErrorMessage": …, "Errors": […]}`; unknown names and duplicates are 400s that
say which. Request bodies are PascalCase and unknown fields are ignored.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cephalo_common.errors import CephaloError, Forbidden, Invalid, NotFound
from cephalo_gateway.deps import GatewayDep, PrincipalDep
from cephalo_gateway.domain.routing import octopus_route
from cephalo_gateway.octopus import resources
from cephalo_gateway.octopus.backend import PENDING_TASK_PREFIX, Backend, BadRequest
from cephalo_gateway.proxy import forward, request_id_of

router = APIRouter(tags=["octopus"])
OCTOPUS_STATUS = {422: 400, 409: 400}


def octopus_error(status: int, message: str, errors: list[str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"ErrorMessage": message, "Errors": errors or [message]},
        status_code=OCTOPUS_STATUS.get(status, status),
    )


async def answer(work: Callable[[], Awaitable[Any]]) -> Response:
    """Run `work`, rendering every expected error the way Octopus clients read them."""
    try:
        result = await work()
    except ValidationError as error:
        messages = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors()]
        return octopus_error(400, "The command is not valid.", messages)
    except CephaloError as error:
        return octopus_error(error.status_code, error.detail)
    return result if isinstance(result, Response) else JSONResponse(result)


class Command(BaseModel):
    """Octopus commands: PascalCase, unknown fields ignored."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CreateReleaseCommandV1(Command):
    ProjectName: str = Field(min_length=1, max_length=200)
    ReleaseVersion: str | None = Field(None, max_length=100)
    ChannelName: str | None = Field(None, max_length=200)
    PackageVersion: str | None = Field(None, max_length=100)
    Packages: list[str] = Field(default_factory=list, max_length=200)
    ReleaseNotes: str | None = Field(None, max_length=100_000)
    IgnoreIfAlreadyExists: bool = False


class CreateDeploymentUntenantedCommandV1(Command):
    ProjectName: str = Field(min_length=1, max_length=200)
    ReleaseVersion: str = Field(min_length=1, max_length=100)
    EnvironmentNames: list[str] = Field(min_length=1, max_length=50)
    UseGuidedFailure: bool | None = None
    SkipStepNames: list[str] = Field(default_factory=list, max_length=200)


async def _json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BadRequest("The request body is not JSON.") from error


def _installation_id(request: Request) -> str:
    secret = request.app.state.runtime.settings.internal_token_secret.get_secret_value()
    return str(uuid.UUID(bytes=hashlib.sha256(b"installation:" + secret.encode()).digest()[:16]))


@router.get("/api", include_in_schema=False)
async def api_root(request: Request) -> Response:
    """Discovery, as Octopus clients expect it (no key needed; a wrong key is a 401)."""
    return JSONResponse(resources.root(_installation_id(request)))


def backend(request: Request, gateway: GatewayDep, principal: PrincipalDep) -> Backend:
    return Backend(gateway, principal, request_id_of(request))


def ids_of(values: list[str]) -> list[str]:
    """`ids=a,b` (RFC 6570) or `ids=a&ids=b`."""
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


@router.get("/api/spaces", include_in_schema=False)
async def spaces(
    request: Request,
    gateway: GatewayDep,
    principal: PrincipalDep,
    partialName: Annotated[str | None, Query(max_length=200)] = None,
    skip: Annotated[int, Query(ge=0)] = 0,
    take: Annotated[int, Query(ge=0)] = 30,
) -> Response:
    async def work() -> Any:
        found = await backend(request, gateway, principal).all_spaces(partialName)
        page = found[skip : skip + take] if take else []
        body = resources.collection("Space", [resources.space(s) for s in page], "/api/spaces")
        body["TotalResults"] = len(found)
        return body

    return await answer(work)


@router.post("/api/{space}/releases/create/v1", include_in_schema=False)
async def create_release(
    space: str, request: Request, gateway: GatewayDep, principal: PrincipalDep
) -> Response:
    async def work() -> Any:
        command = CreateReleaseCommandV1.model_validate(await _json(request))
        api = backend(request, gateway, principal)
        space_id = await api.space_id(space)
        project = await api.project(space_id, command.ProjectName)
        body: dict[str, Any] = {"release_notes": command.ReleaseNotes or ""}
        if command.ReleaseVersion:
            body["version"] = command.ReleaseVersion
        if command.ChannelName:
            body["channel"] = command.ChannelName
        if command.Packages:
            body["packages"] = [_package(p) for p in command.Packages]
        status, created = await api.create_release(space_id, project, body)
        if status == 409 and command.IgnoreIfAlreadyExists and command.ReleaseVersion:
            created = await api.release(space_id, project, command.ReleaseVersion)
        elif status == 409:
            version = command.ReleaseVersion or "(from the project's template)"
            raise BadRequest(f"Release '{version}' already exists for project '{project['name']}'.")
        elif status == 404:
            raise BadRequest(_detail(created, f"Channel '{command.ChannelName}' was not found."))
        elif status >= 400 or not isinstance(created, dict):
            raise BadRequest(_detail(created, f"The release was refused ({status})."))
        request.state.audit_space_id = space_id
        return {"ReleaseId": str(created["id"]), "ReleaseVersion": created["version"]}

    return await answer(work)


def _detail(body: Any, fallback: str) -> str:
    return str(body.get("detail") or fallback) if isinstance(body, dict) else fallback


def _package(spec: str) -> dict[str, str]:
    """`StepName:Version`, `StepName:PackageReference:Version` (Octopus's forms)."""
    parts = spec.split(":")
    if len(parts) == 2 and all(parts):
        return {"action_name": parts[0], "version": parts[1]}
    if len(parts) == 3 and parts[0] and parts[2]:
        return {"action_name": parts[0], "package_reference": parts[1], "version": parts[2]}
    raise BadRequest(f"Package '{spec}' is not StepName:Version or StepName:Package:Version.")


@router.post("/api/{space}/deployments/create/untenanted/v1", include_in_schema=False)
async def create_deployment(
    space: str, request: Request, gateway: GatewayDep, principal: PrincipalDep
) -> Response:
    async def work() -> Any:
        command = CreateDeploymentUntenantedCommandV1.model_validate(await _json(request))
        names = [name.strip() for name in command.EnvironmentNames]
        seen: set[str] = set()
        for name in names:
            if not name or name.lower() in seen:
                raise BadRequest(f"Environment '{name}' is listed more than once or is empty.")
            seen.add(name.lower())
        api = backend(request, gateway, principal)
        space_id = await api.space_id(space)
        request.state.audit_space_id = space_id
        project = await api.project(space_id, command.ProjectName)
        release = await api.release(space_id, project, command.ReleaseVersion)
        environments = [await api.environment(space_id, name) for name in names]
        for environment in environments:
            await api.authorize_deployment(space_id, str(release["id"]), str(environment["id"]))
        tasks = []
        for environment in environments:
            body: dict[str, Any] = {
                "release_id": str(release["id"]),
                "environment_id": str(environment["id"]),
            }
            if command.UseGuidedFailure is not None:
                body["use_guided_failure"] = command.UseGuidedFailure
            if command.SkipStepNames:
                body["skip_actions"] = command.SkipStepNames
            deployment = await api.create_deployment(space_id, body)
            tasks.append(deployment)
        wait = gateway.security.settings.octopus_task_wait_seconds
        answers = []
        for deployment in tasks:
            task = await api.wait_for_task(space_id, str(deployment["id"]), wait)
            task_id = str(task["id"]) if task else PENDING_TASK_PREFIX + str(deployment["id"])
            answers.append({"DeploymentId": str(deployment["id"]), "ServerTaskId": task_id})
        return {"DeploymentServerTasks": answers}

    return await answer(work)


async def _visible(fetch: Awaitable[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Objects the caller may not see, or that do not exist, are left out of lists."""
    try:
        return await fetch
    except (NotFound, Forbidden, Invalid):
        return None


Lookup = Callable[[Backend, uuid.UUID, str], Awaitable[dict[str, Any] | None]]


def _shaped(
    fetch: Callable[[Backend, uuid.UUID, str], Awaitable[dict[str, Any] | None]],
    shape: Callable[[dict[str, Any]], dict[str, Any]],
) -> Lookup:
    """A lookup answering the Octopus shape of what `fetch` finds."""

    async def lookup(api: Backend, space_id: uuid.UUID, item_id: str) -> dict[str, Any] | None:
        item = await fetch(api, space_id, item_id)
        return None if item is None else shape(item)

    return lookup


async def _deployment_resource(
    api: Backend, space_id: uuid.UUID, deployment_id: str
) -> dict[str, Any] | None:
    """Release-service keeps deployments and the orchestrator their tasks: `TaskId` (what
    await-task polls) comes from the orchestrator, or is the pending id until it exists."""
    item = await api.deployment(space_id, deployment_id)
    if item is None:
        return None
    task = None if item.get("task_id") else await api.task_of_deployment(space_id, deployment_id)
    task_id = str(task["id"]) if task else None
    if task_id is None and not item.get("task_id"):
        task_id = f"{PENDING_TASK_PREFIX}{item['id']}"
    return resources.deployment(item, task_id)


async def _task_resource(api: Backend, space_id: uuid.UUID, task_id: str) -> dict[str, Any] | None:
    item = await api.task(space_id, task_id)
    if item is not None:
        return resources.task(item)
    if task_id.startswith(PENDING_TASK_PREFIX):
        deployment_id = task_id[len(PENDING_TASK_PREFIX) :]
        if await _visible(api.deployment(space_id, deployment_id)) is not None:
            return resources.pending_task(str(space_id), task_id, deployment_id)
    return None


LOOKUPS: dict[str, tuple[str, Lookup]] = {
    "deployments": ("Deployment", _deployment_resource),
    "environments": ("Environment", _shaped(Backend.environment_by_id, resources.environment)),
    "tasks": ("ServerTask", _task_resource),
}


def _add_lookup_routes(path: str, kind: str, lookup: Lookup) -> None:
    """`GET /api/{space}/<path>?ids=…` (what the caller may see) and `…/<path>/{id}`."""

    async def by_ids(
        space: str,
        request: Request,
        gateway: GatewayDep,
        principal: PrincipalDep,
        ids: Annotated[list[str], Query(max_length=300)] = [],  # noqa: B006
    ) -> Response:
        async def work() -> Any:
            api = backend(request, gateway, principal)
            space_id = await api.space_id(space)
            found = []
            for item_id in ids_of(ids)[:300]:
                item = await _visible(lookup(api, space_id, item_id))
                if item is not None:
                    found.append(item)
            return resources.collection(kind, found, f"/api/{space_id}/{path}")

        return await answer(work)

    async def one(
        space: str, item_id: str, request: Request, gateway: GatewayDep, principal: PrincipalDep
    ) -> Response:
        async def work() -> Any:
            api = backend(request, gateway, principal)
            item = await lookup(api, await api.space_id(space), item_id)
            if item is None:
                raise NotFound(f"{kind.removeprefix('Server')} '{item_id}' was not found.")
            return item

        return await answer(work)

    router.add_api_route(f"/api/{{space}}/{path}", by_ids, methods=["GET"], include_in_schema=False)
    router.add_api_route(
        f"/api/{{space}}/{path}/{{item_id}}", one, methods=["GET"], include_in_schema=False
    )


for _path, (_kind, _lookup) in LOOKUPS.items():
    _add_lookup_routes(_path, _kind, _lookup)


@router.get("/api/tasks/{task_id}", include_in_schema=False)
async def system_task(
    task_id: str, request: Request, gateway: GatewayDep, principal: PrincipalDep
) -> Response:
    """Tasks live in spaces; without one, each space the caller may enter is asked."""

    async def work() -> Any:
        api = backend(request, gateway, principal)
        for found_space in await api.all_spaces():
            space_id = uuid.UUID(str(found_space["id"]))
            item = await _visible(_task_resource(api, space_id, task_id))
            if item is not None:
                return item
        raise NotFound(f"Task '{task_id}' was not found.")

    return await answer(work)


@router.post("/api/{space}/packages/raw", include_in_schema=False)
async def push_package(space: str, request: Request, gateway: GatewayDep) -> Response:
    """Octopus's package upload, streamed to package-feed unchanged."""

    async def work() -> Any:
        route = octopus_route(request.url.path)
        if route is None:
            raise NotFound("no such route")
        if route.space is not None and route.space.lower() in ("spaces-1",):
            route = octopus_route(request.url.path.replace(f"/api/{space}/", "/api/default/", 1))
            assert route is not None
        return await forward(request, gateway, route=route, octopus=True)

    return await answer(work)
