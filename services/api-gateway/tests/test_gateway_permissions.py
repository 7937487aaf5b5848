"""The pure permission rules: grants against scopes, and a rule for every upstream route."""

from __future__ import annotations

import re
import uuid
import warnings
from typing import Any

import pytest

from cephalo_agent_gateway.app import create_app as create_agent_gateway_app
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_feed.app import create_app as create_feed_app
from cephalo_feed.settings import FeedSettings
from cephalo_gateway.domain.permissions import (
    BUILT_IN_ROLES,
    Grant,
    Kind,
    ObjectScope,
    Permission,
    allowed_without_lookup,
    can_enter_space,
    is_administrator,
    is_allowed,
    requirement_for,
)
from cephalo_gateway.domain.routing import COLLECTIONS, SYSTEM_ROUTES
from cephalo_orchestrator.app import create_app as create_orchestrator_app
from cephalo_orchestrator.settings import OrchestratorSettings
from cephalo_release.app import create_app as create_release_app
from cephalo_release.settings import ReleaseSettings

SPACE, OTHER = uuid.uuid4(), uuid.uuid4()
A, B, GROUP = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
DEV, PROD = uuid.uuid4(), uuid.uuid4()
SCOPED = (Grant("project-deployer", SPACE, frozenset({A}), frozenset(), frozenset({DEV})),)


@pytest.mark.parametrize(
    ("permission", "scope", "allowed"),
    [
        (Permission.DEPLOYMENT_CREATE, ObjectScope(SPACE, A, None, frozenset({DEV})), True),
        (Permission.DEPLOYMENT_CREATE, ObjectScope(SPACE, A, None, frozenset({PROD})), False),
        (Permission.DEPLOYMENT_CREATE, ObjectScope(SPACE, B, None, frozenset({DEV})), False),
        (Permission.DEPLOYMENT_CREATE, ObjectScope(OTHER, A, None, frozenset({DEV})), False),
        (Permission.RELEASE_CREATE, ObjectScope(SPACE, A), False),
        (Permission.PROJECT_VIEW, ObjectScope(SPACE, A), True),
        (Permission.ENVIRONMENT_VIEW, ObjectScope(SPACE, None, None, frozenset({DEV})), True),
        (Permission.ENVIRONMENT_VIEW, ObjectScope(SPACE, None, None, frozenset({PROD})), False),
        (Permission.USER_VIEW, ObjectScope(), False),
    ],
)
def test_a_scoped_grant_covers_only_its_scope(
    permission: Permission, scope: ObjectScope, allowed: bool
) -> None:
    assert is_allowed(SCOPED, permission, scope) is allowed


def test_project_groups_cover_their_projects() -> None:
    grants = (Grant("project-viewer", SPACE, project_group_ids=frozenset({GROUP})),)
    assert is_allowed(grants, Permission.PROJECT_VIEW, ObjectScope(SPACE, B, GROUP))
    assert not is_allowed(grants, Permission.PROJECT_VIEW, ObjectScope(SPACE, B, uuid.uuid4()))


def test_system_permissions_need_an_unscoped_grant() -> None:
    assert is_administrator((Grant("administrator"),))
    assert not is_administrator((Grant("administrator", SPACE),))
    assert not is_allowed((Grant("space-manager", SPACE),), Permission.USER_EDIT, ObjectScope())
    assert is_allowed(
        (Grant("space-manager", SPACE),), Permission.PROJECT_DELETE, ObjectScope(SPACE, A)
    )


def test_unrestricted_grants_settle_without_a_lookup_and_spaces_are_entered_by_grant() -> None:
    assert allowed_without_lookup((Grant("project-viewer", SPACE),), Permission.PROJECT_VIEW, SPACE)
    assert not allowed_without_lookup(SCOPED, Permission.PROJECT_VIEW, SPACE)
    assert can_enter_space(SCOPED, SPACE) and not can_enter_space(SCOPED, OTHER)


def test_the_lead_creates_releases_and_the_deployer_deploys() -> None:
    assert Permission.RELEASE_CREATE in BUILT_IN_ROLES["project-lead"].permissions
    assert Permission.DEPLOYMENT_CREATE not in BUILT_IN_ROLES["project-lead"].permissions
    assert Permission.DEPLOYMENT_CREATE in BUILT_IN_ROLES["project-deployer"].permissions
    assert Permission.RELEASE_CREATE not in BUILT_IN_ROLES["project-deployer"].permissions
    assert not any(
        role.is_system for name, role in BUILT_IN_ROLES.items() if name != "administrator"
    )


def test_requirements_name_the_objects_a_request_touches() -> None:
    deploy = requirement_for("POST", ["spaces", "default", "deployments"])
    assert deploy is not None and deploy.permission is Permission.DEPLOYMENT_CREATE
    assert dict(deploy.body) == {"release_id": Kind.RELEASE, "environment_id": Kind.ENVIRONMENT}
    log = requirement_for("GET", ["spaces", "s", "tasks", "t-1", "log"])
    assert log is not None and log.refs == {Kind.TASK: "t-1"} and log.space == "s"
    for path in (["artifacts"], ["artifacts", "a-1"]):
        artifact = requirement_for("GET", ["spaces", "s", "tasks", "t-1", *path])
        assert artifact is not None and artifact.permission is Permission.ARTIFACT_VIEW
        assert artifact.refs == {Kind.TASK: "t-1"}
    assert requirement_for("GET", ["spaces", "s", "unicorns"]) is None


def _documents() -> dict[str, dict[str, Any]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "release-service": create_release_app(ReleaseSettings()).openapi(),
            "deploy-orchestrator": create_orchestrator_app(OrchestratorSettings()).openapi(),
            "package-feed": create_feed_app(FeedSettings()).openapi(),
            "agent-gateway": create_agent_gateway_app(AgentGatewaySettings()).openapi(),
        }


def test_every_upstream_route_has_a_permission_rule() -> None:
    """Fail closed is safe but unusable: a new upstream route needs a rule (and a
    collection in the routing table) before non-administrators can use it."""
    missing = []
    for service, document in _documents().items():
        for path, operations in document["paths"].items():
            if not path.startswith("/api/v1/"):
                continue
            segments = [
                re.sub(r"\{[^}]+\}", "x", part) for part in path[len("/api/v1/") :].split("/")
            ]
            for method in operations:
                if method.upper() not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
                    continue
                in_space = segments[0] == "spaces" and (
                    len(segments) <= 2 or segments[2] in COLLECTIONS
                )
                routed = segments[0] in SYSTEM_ROUTES or in_space
                if requirement_for(method, segments) is None or not routed:
                    missing.append((service, method.upper(), path))
    assert not missing, missing
