"""Where an object lives (project, project group, environments), asked of its owner.

Only scoped users need this: an unrestricted grant settles a request without a lookup.
Answers are cached for `scope_cache_seconds` (a renamed project or a moved machine may be
judged by its old scope for that long); releases, deployments and tasks never move.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from cephalo_common.errors import NotFound, Unavailable
from cephalo_gateway.domain.permissions import Kind, ObjectScope
from cephalo_gateway.domain.routing import API_PREFIX, Upstream
from cephalo_gateway.upstream.client import UpstreamClient

MAX_ENTRIES = 10_000
Headers = Callable[[Upstream], list[tuple[str, str]]]


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


class ScopeResolver:
    def __init__(
        self,
        client: UpstreamClient,
        ttl_seconds: float,
        headers: Headers,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._headers = headers
        self._clock = clock
        self._cache: OrderedDict[tuple[str, uuid.UUID, str], tuple[dict[str, Any], float]] = (
            OrderedDict()
        )

    async def _fetch(
        self, upstream: Upstream, kind: str, space_id: uuid.UUID, ref: str, path: str
    ) -> dict[str, Any]:
        key = (kind, space_id, ref.lower())
        cached = self._cache.get(key)
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        status, body = await self._client.get_json(
            upstream,
            f"{API_PREFIX}/spaces/{space_id}/{path}/{quote(ref, safe='')}",
            headers=self._headers(upstream),
        )
        if status in (404, 422) or (400 <= status < 500 and status not in (401, 403)):
            raise NotFound(f"{kind.replace('_', ' ')} {ref!r} was not found")
        if status != 200 or not isinstance(body, dict):
            raise Unavailable(f"{upstream.value} could not say where {kind} {ref!r} belongs")
        if self._ttl > 0:
            self._cache[key] = (body, self._clock() + self._ttl)
            while len(self._cache) > MAX_ENTRIES:
                self._cache.popitem(last=False)
        return body

    async def project(self, space_id: uuid.UUID, ref: str) -> ObjectScope:
        body = await self._fetch(Upstream.RELEASE_SERVICE, "project", space_id, ref, "projects")
        return ObjectScope(
            space_id=space_id,
            project_id=_uuid(body.get("id")),
            project_group_id=_uuid(body.get("project_group_id")),
        )

    async def environment_id(self, space_id: uuid.UUID, ref: str) -> uuid.UUID | None:
        body = await self._fetch(
            Upstream.RELEASE_SERVICE, "environment", space_id, ref, "environments"
        )
        return _uuid(body.get("id"))

    async def _with_project(
        self, space_id: uuid.UUID, body: Mapping[str, Any], environments: Sequence[Any] = ()
    ) -> ObjectScope:
        project_id = _uuid(body.get("project_id"))
        scope = (
            await self.project(space_id, str(project_id))
            if project_id
            else ObjectScope(space_id=space_id)
        )
        return ObjectScope(
            space_id=space_id,
            project_id=scope.project_id,
            project_group_id=scope.project_group_id,
            environment_ids=frozenset(e for e in map(_uuid, environments) if e is not None),
        )

    async def one(self, space_id: uuid.UUID, kind: Kind, ref: str) -> ObjectScope:
        """The scope of one object named in a path or a body."""
        if kind is Kind.PROJECT:
            return await self.project(space_id, ref)
        if kind is Kind.PROJECT_GROUP:
            body = await self._fetch(
                Upstream.RELEASE_SERVICE, "project_group", space_id, ref, "project-groups"
            )
            return ObjectScope(space_id=space_id, project_group_id=_uuid(body.get("id")))
        if kind in (Kind.ENVIRONMENT, Kind.ENVIRONMENTS):
            environment = await self.environment_id(space_id, ref)
            return ObjectScope(
                space_id=space_id, environment_ids=frozenset({environment} if environment else ())
            )
        if kind is Kind.RELEASE:
            body = await self._fetch(Upstream.RELEASE_SERVICE, "release", space_id, ref, "releases")
            return await self._with_project(space_id, body)
        if kind is Kind.DEPLOYMENT:
            body = await self._fetch(
                Upstream.RELEASE_SERVICE, "deployment", space_id, ref, "deployments"
            )
            return await self._with_project(space_id, body, [body.get("environment_id")])
        if kind is Kind.TASK:
            body = await self._fetch(Upstream.DEPLOY_ORCHESTRATOR, "task", space_id, ref, "tasks")
            return await self._with_project(space_id, body, [body.get("environment_id")])
        if kind is Kind.MACHINE:
            body = await self._fetch(Upstream.AGENT_GATEWAY, "machine", space_id, ref, "machines")
            environments = body.get("environment_ids") or []
            return ObjectScope(
                space_id=space_id,
                environment_ids=frozenset(e for e in map(_uuid, environments) if e is not None),
            )
        return ObjectScope(space_id=space_id)

    async def scope(
        self, space_id: uuid.UUID, refs: Mapping[Kind, str | Sequence[str]]
    ) -> ObjectScope:
        """Every named object's scope merged: the request touches all of them."""
        merged = ObjectScope(space_id=space_id)
        for kind, value in refs.items():
            for ref in [value] if isinstance(value, str) else value:
                merged = merge(merged, await self.one(space_id, kind, ref))
        return merged


def merge(a: ObjectScope, b: ObjectScope) -> ObjectScope:
    return ObjectScope(
        space_id=a.space_id or b.space_id,
        project_id=a.project_id or b.project_id,
        project_group_id=a.project_group_id or b.project_group_id,
        environment_ids=a.environment_ids | b.environment_ids,
    )
