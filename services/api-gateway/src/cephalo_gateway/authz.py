"""Authorization of proxied requests: the route's permission against the object's scope.

The rules are pure (`domain/permissions.py`); this module fetches what they need: the
object's project and environments from its owner (`upstream/scopes.py`) and, for requests
that name objects in their body (deploy a release to an environment), the body itself —
read once, bounded, and then forwarded as read.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from cephalo_common.errors import CephaloError, Forbidden, NotFound
from cephalo_gateway.domain.identity import Principal
from cephalo_gateway.domain.permissions import (
    Grant,
    Kind,
    ObjectScope,
    Permission,
    Requirement,
    allowed_without_lookup,
    can_enter_space,
    is_allowed,
    requirement_for,
)
from cephalo_gateway.domain.routing import API_PREFIX
from cephalo_gateway.upstream.scopes import ScopeResolver, merge

MAX_INSPECTED_BODY = 1024 * 1024


class PayloadTooLarge(CephaloError):
    status_code = 413
    title = "Payload too large"
    type_slug = "payload-too-large"


def segments_of(path: str) -> list[str]:
    """Decoded segments after `/api/v1` (the routing table has already accepted the path)."""
    tail = path[len(API_PREFIX) :].strip("/")
    return [unquote(part) for part in tail.split("/")] if tail else []


def _has_permission_anywhere(
    grants: Sequence[Grant], permission: Permission, space_id: uuid.UUID | None
) -> bool:
    return any(
        permission in g.permissions
        and (g.space_id is None or space_id is None or g.space_id == space_id)
        for g in grants
    )


def body_refs(requirement: Requirement, body: bytes | None) -> dict[Kind, list[str]]:
    """The objects a JSON body names (a body that is not JSON names none: the owner will
    refuse it with its own 422)."""
    if not requirement.body or not body:
        return {}
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(parsed, dict):
        return {}
    refs: dict[Kind, list[str]] = {}
    for name, kind in requirement.body.items():
        value = parsed.get(name)
        values = value if isinstance(value, list) else [value]
        found = [str(v) for v in values if isinstance(v, str) and v.strip()]
        if found:
            refs.setdefault(kind, []).extend(found)
    return refs


class Authorizer:
    def __init__(self, scopes: ScopeResolver) -> None:
        self.scopes = scopes

    def requirement(self, method: str, path: str) -> Requirement | None:
        return requirement_for(method, segments_of(path))

    async def check(
        self,
        principal: Principal,
        requirement: Requirement | None,
        space_id: uuid.UUID | None,
        body: bytes | None = None,
    ) -> None:
        """Raise `NotFound` for a space the user cannot enter, `Forbidden` for the rest."""
        if principal.is_administrator:
            return
        grants = principal.grants
        if requirement is None:
            raise Forbidden("only administrators may use this route")
        if requirement.space is not None and (
            space_id is None or not can_enter_space(grants, space_id)
        ):
            raise NotFound(f"space {requirement.space!r} was not found")
        permission = requirement.permission
        if permission is None:
            return
        if allowed_without_lookup(grants, permission, space_id):
            return
        if not _has_permission_anywhere(grants, permission, space_id):
            raise Forbidden(f"you do not have the {permission} permission here")
        await self.check_scoped(
            grants, permission, space_id, requirement.refs, body_refs(requirement, body)
        )

    async def check_scoped(
        self,
        grants: Sequence[Grant],
        permission: Permission,
        space_id: uuid.UUID | None,
        refs: Mapping[Kind, str],
        from_body: Mapping[Kind, list[str]],
    ) -> None:
        """Every environment a write names must be allowed, not just one of them."""
        assert space_id is not None
        merged = await self.scopes.scope(
            space_id, {**refs, **{k: v for k, v in from_body.items() if k is not Kind.ENVIRONMENTS}}
        )
        scopes = [merged]
        for ref in from_body.get(Kind.ENVIRONMENTS, []):
            scopes.append(merge(merged, await self.scopes.one(space_id, Kind.ENVIRONMENTS, ref)))
        for scope in scopes:
            if not is_allowed(grants, permission, scope):
                raise Forbidden(f"you do not have the {permission} permission on this object")


# Lists: only what the user may see -------------------------------------------------------

LIST_FILTERS: Mapping[str, Permission] = {
    "projects": Permission.PROJECT_VIEW,
    "environments": Permission.ENVIRONMENT_VIEW,
    "releases": Permission.RELEASE_VIEW,
    "deployments": Permission.DEPLOYMENT_VIEW,
    "tasks": Permission.TASK_VIEW,
    "machines": Permission.MACHINE_VIEW,
}


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def item_scope(collection: str, space_id: uuid.UUID | None, item: Mapping[str, Any]) -> ObjectScope:
    """An item's scope from its own fields: lists are filtered without look-ups."""
    project = _uuid(item.get("id")) if collection == "projects" else _uuid(item.get("project_id"))
    environments: set[uuid.UUID] = set()
    if collection == "environments":
        environments = {e for e in [_uuid(item.get("id"))] if e}
    elif "environment_ids" in item:
        environments = {e for e in map(_uuid, item.get("environment_ids") or []) if e}
    elif item.get("environment_id"):
        environments = {e for e in [_uuid(item.get("environment_id"))] if e}
    return ObjectScope(
        space_id=space_id,
        project_id=project,
        project_group_id=_uuid(item.get("project_group_id")),
        environment_ids=frozenset(environments),
    )


def list_filter(principal: Principal | None, method: str, path: str) -> str | None:
    """The collection whose list must be filtered for this user, or None (no filtering)."""
    if principal is None or principal.is_administrator or method != "GET":
        return None
    segments = segments_of(path)
    if segments == ["spaces"]:
        return "spaces"
    if len(segments) == 3 and segments[0] == "spaces" and segments[2] in LIST_FILTERS:
        permission = LIST_FILTERS[segments[2]]
        if any(permission in g.permissions and g.restricted for g in principal.grants):
            return segments[2]
    is_release_list = len(segments) == 5 and segments[2:5:2] == ["projects", "releases"]
    if is_release_list and any(g.restricted for g in principal.grants):
        return "releases"
    return None


def filter_items(
    principal: Principal, collection: str, space_id: uuid.UUID | None, body: Any
) -> Any:
    """The same shape (a bare list or `{items, …}`) with only the visible items."""
    items = body.get("items") if isinstance(body, dict) else body
    if not isinstance(items, list):
        return body

    def visible(item: Any) -> bool:
        if not isinstance(item, dict):
            return False
        if collection == "spaces":
            space = _uuid(item.get("id"))
            return space is not None and can_enter_space(principal.grants, space)
        permission = LIST_FILTERS[collection]
        return is_allowed(principal.grants, permission, item_scope(collection, space_id, item))

    kept = [item for item in items if visible(item)]
    if isinstance(body, dict):
        return {**body, "items": kept}
    return kept
