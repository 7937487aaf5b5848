"""Octopus build-server commands carried out with Cephalo's services, as the caller.

Every call goes through the gateway's upstream client with the caller's signed identity,
and every object is authorized with the same rules as the Cephalo API (`authz.py`), so
an Octopus client can do exactly what its API key could do through `/api/v1`.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from cephalo_common.errors import CephaloError, NotFound, Unavailable
from cephalo_gateway.domain.identity import Principal
from cephalo_gateway.domain.permissions import can_enter_space, requirement_for
from cephalo_gateway.domain.routing import API_PREFIX, Upstream
from cephalo_gateway.octopus.resources import items_of
from cephalo_gateway.proxy import Gateway

DEFAULT_SPACE_ALIASES = frozenset({"spaces-1", "default"})
PENDING_TASK_PREFIX = "pending-"
"""A task id handed out before the orchestrator made the task: `pending-<deployment id>`."""
PAGE = 100
MAX_PAGES = 50
TASK_POLL_SECONDS = 0.2


class BadRequest(CephaloError):
    """What Octopus answers for unknown names, duplicates and invalid commands."""

    status_code = 400
    title = "Bad request"
    type_slug = "bad-request"


def _problem_text(body: Any, fallback: str) -> str:
    if isinstance(body, dict):
        detail = str(body.get("detail") or body.get("title") or fallback)
        fields = [
            f"{e.get('field')}: {e.get('message')}"
            for e in body.get("errors") or []
            if isinstance(e, dict)
        ]
        return detail + (f" ({'; '.join(fields)})" if fields else "")
    return fallback


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


@dataclass
class Backend:
    gateway: Gateway
    principal: Principal
    request_id: str

    def _headers(self, upstream: Upstream) -> list[tuple[str, str]]:
        return [
            ("accept", "application/json"),
            ("x-request-id", self.request_id),
            self.gateway.security.identity_header(self.principal, upstream.value),
        ]

    async def call(
        self,
        upstream: Upstream,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> tuple[int, Any]:
        status, answer = await self.gateway.upstreams.send_json(
            upstream, method, path, body=body, params=params, headers=self._headers(upstream)
        )
        if status >= 500:
            raise Unavailable(_problem_text(answer, f"{upstream.value} failed ({status})"))
        return status, answer

    async def authorize(
        self, method: str, segments: Sequence[str], space_id: uuid.UUID, body: Any = None
    ) -> None:
        requirement = requirement_for(method, list(segments))
        raw = json.dumps(body).encode() if body is not None else None
        await self.gateway.authorizer.check(self.principal, requirement, space_id, raw)

    # Spaces -----------------------------------------------------------------------------

    async def all_spaces(self, partial_name: str | None = None) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            params: dict[str, Any] = {"skip": page * PAGE, "take": PAGE}
            if partial_name:
                params["partial_name"] = partial_name
            status, body = await self.call(
                Upstream.RELEASE_SERVICE, "GET", f"{API_PREFIX}/spaces", params=params
            )
            items = items_of(body) if status == 200 else []
            found += items
            if not isinstance(body, dict) or len(items) < PAGE:
                break
        visible = [
            s
            for s in found
            if self.principal.is_administrator
            or ((sid := _uuid(str(s.get("id")))) and can_enter_space(self.principal.grants, sid))
        ]
        if partial_name:
            visible = [s for s in visible if partial_name.lower() in str(s.get("name", "")).lower()]
        return visible

    async def space_id(self, ref: str) -> uuid.UUID:
        """A space id, slug or `Spaces-1` (the default space) the caller may enter."""
        if ref.lower() in DEFAULT_SPACE_ALIASES:
            defaults = [s for s in await self.all_spaces() if s.get("is_default")]
            if not defaults:
                raise NotFound(f"space {ref!r} was not found")
            space_id = uuid.UUID(str(defaults[0]["id"]))
        else:
            space_id = _uuid(ref) or await self.gateway.spaces.space_id(
                ref, request_id=self.request_id
            )
        if not self.principal.is_administrator and not can_enter_space(
            self.principal.grants, space_id
        ):
            raise NotFound(f"space {ref!r} was not found")
        return space_id

    # Projects, releases, environments ---------------------------------------------------

    async def _list(self, upstream: Upstream, path: str, **params: Any) -> list[dict[str, Any]]:
        """Every item, page by page (bare-list answers come whole). A 4xx is the caller's
        input (a name with a NUL, say): Octopus's 400, not an outage."""
        found: list[dict[str, Any]] = []
        for page in range(MAX_PAGES):
            status, body = await self.call(
                upstream, "GET", path, params={**params, "take": PAGE, "skip": page * PAGE}
            )
            if 400 <= status < 500:
                raise BadRequest(_problem_text(body, f"{upstream.value} refused the lookup"))
            if status != 200:
                raise Unavailable(_problem_text(body, f"{upstream.value} could not list {path}"))
            items = items_of(body)
            found += items
            if not isinstance(body, dict) or len(items) < PAGE:
                break
        return found

    async def project(self, space_id: uuid.UUID, name: str) -> dict[str, Any]:
        projects = await self._list(
            Upstream.RELEASE_SERVICE,
            f"{API_PREFIX}/spaces/{space_id}/projects",
            partial_name=name,
        )
        for project in projects:
            if str(project.get("name", "")).lower() == name.lower():
                return project
        raise BadRequest(f"Project '{name}' was not found in this space.")

    async def releases(self, space_id: uuid.UUID, project_id: str) -> list[dict[str, Any]]:
        return await self._list(
            Upstream.RELEASE_SERVICE,
            f"{API_PREFIX}/spaces/{space_id}/projects/{project_id}/releases",
        )

    async def release(
        self, space_id: uuid.UUID, project: Mapping[str, Any], version: str
    ) -> dict[str, Any]:
        for release in await self.releases(space_id, str(project["id"])):
            if str(release.get("version", "")).lower() == version.lower():
                return release
        raise BadRequest(f"Release '{version}' of project '{project['name']}' was not found.")

    async def environment(self, space_id: uuid.UUID, name: str) -> dict[str, Any]:
        status, body = await self.call(
            Upstream.RELEASE_SERVICE,
            "GET",
            f"{API_PREFIX}/spaces/{space_id}/environments/{quote(name, safe='')}",
        )
        if status == 200 and isinstance(body, dict):
            return body
        if status in (404, 422):
            raise BadRequest(f"Environment '{name}' was not found in this space.")
        raise Unavailable(_problem_text(body, "release-service could not find environments"))

    async def create_release(
        self, space_id: uuid.UUID, project: Mapping[str, Any], command: Mapping[str, Any]
    ) -> tuple[int, Any]:
        segments = ["spaces", str(space_id), "projects", str(project["id"]), "releases"]
        await self.authorize("POST", segments, space_id)
        return await self.call(
            Upstream.RELEASE_SERVICE,
            "POST",
            f"{API_PREFIX}/spaces/{space_id}/projects/{project['id']}/releases",
            body=dict(command),
        )

    # Deployments and tasks --------------------------------------------------------------

    async def authorize_deployment(
        self, space_id: uuid.UUID, release_id: str, environment_id: str
    ) -> None:
        body = {"release_id": release_id, "environment_id": environment_id}
        await self.authorize("POST", ["spaces", str(space_id), "deployments"], space_id, body)

    async def create_deployment(
        self, space_id: uuid.UUID, command: Mapping[str, Any]
    ) -> dict[str, Any]:
        status, body = await self.call(
            Upstream.RELEASE_SERVICE,
            "POST",
            f"{API_PREFIX}/spaces/{space_id}/deployments",
            body=dict(command),
        )
        if status not in (200, 201) or not isinstance(body, dict):
            raise BadRequest(_problem_text(body, f"the deployment was refused ({status})"))
        return body

    async def deployment(self, space_id: uuid.UUID, deployment_id: str) -> dict[str, Any] | None:
        if _uuid(deployment_id) is None:
            return None
        await self.authorize(
            "GET", ["spaces", str(space_id), "deployments", deployment_id], space_id
        )
        status, body = await self.call(
            Upstream.RELEASE_SERVICE,
            "GET",
            f"{API_PREFIX}/spaces/{space_id}/deployments/{deployment_id}",
        )
        return body if status == 200 and isinstance(body, dict) else None

    async def environment_by_id(
        self, space_id: uuid.UUID, environment_id: str
    ) -> dict[str, Any] | None:
        if _uuid(environment_id) is None:
            return None
        segments = ["spaces", str(space_id), "environments", environment_id]
        await self.authorize("GET", segments, space_id)
        status, body = await self.call(
            Upstream.RELEASE_SERVICE,
            "GET",
            f"{API_PREFIX}/spaces/{space_id}/environments/{environment_id}",
        )
        return body if status == 200 and isinstance(body, dict) else None

    async def task_of_deployment(
        self, space_id: uuid.UUID, deployment_id: str
    ) -> dict[str, Any] | None:
        status, body = await self.call(
            Upstream.DEPLOY_ORCHESTRATOR,
            "GET",
            f"{API_PREFIX}/spaces/{space_id}/tasks",
            params={"deployment_id": deployment_id},
        )
        tasks = items_of(body) if status == 200 else []
        return tasks[0] if tasks else None

    async def wait_for_task(
        self, space_id: uuid.UUID, deployment_id: str, seconds: float
    ) -> dict[str, Any] | None:
        """The orchestrator makes the task when it consumes `deployment.requested`; wait a
        little for it, then give up (the caller hands out a pending id instead)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while True:
            found = await self.task_of_deployment(space_id, deployment_id)
            if found is not None or loop.time() >= deadline:
                return found
            await asyncio.sleep(TASK_POLL_SECONDS)

    async def task(self, space_id: uuid.UUID, task_id: str) -> dict[str, Any] | None:
        """A task by id, or by `pending-<deployment id>` (None while there is none)."""
        if task_id.startswith(PENDING_TASK_PREFIX):
            deployment_id = task_id[len(PENDING_TASK_PREFIX) :]
            if await self.deployment(space_id, deployment_id) is None:
                return None
            return await self.task_of_deployment(space_id, deployment_id)
        if _uuid(task_id) is None:
            return None
        await self.authorize("GET", ["spaces", str(space_id), "tasks", task_id], space_id)
        status, body = await self.call(
            Upstream.DEPLOY_ORCHESTRATOR,
            "GET",
            f"{API_PREFIX}/spaces/{space_id}/tasks/{task_id}",
        )
        return body if status == 200 and isinstance(body, dict) else None
