"""Permissions, built-in roles, scoped grants and which permission each route needs.

After Octopus (docs: security/users-and-teams/user-roles, system-and-space-permissions):
a team holds scoped role assignments `{role, space, projects, project groups,
environments}`; an empty list leaves that dimension unrestricted. A user may do X to an
object when any of their teams' assignments has a role with X and its scope covers the
object. Plain Python: the gateway resolves an object's project and environment elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum


class Permission(StrEnum):
    """The Octopus permissions that apply to Cephalo, spelt as Octopus spells them."""

    ADMINISTER_SYSTEM = "AdministerSystem"
    USER_VIEW = "UserView"
    USER_EDIT = "UserEdit"
    TEAM_VIEW = "TeamView"
    TEAM_EDIT = "TeamEdit"
    USER_ROLE_VIEW = "UserRoleView"
    SPACE_CREATE = "SpaceCreate"
    EVENT_VIEW = "EventView"
    PROJECT_VIEW = "ProjectView"
    PROJECT_CREATE = "ProjectCreate"
    PROJECT_EDIT = "ProjectEdit"
    PROJECT_DELETE = "ProjectDelete"
    PROJECT_GROUP_VIEW = "ProjectGroupView"
    PROJECT_GROUP_CREATE = "ProjectGroupCreate"
    PROJECT_GROUP_EDIT = "ProjectGroupEdit"
    PROJECT_GROUP_DELETE = "ProjectGroupDelete"
    PROCESS_VIEW = "ProcessView"
    PROCESS_EDIT = "ProcessEdit"
    VARIABLE_VIEW = "VariableView"
    VARIABLE_EDIT = "VariableEdit"
    LIBRARY_VARIABLE_SET_VIEW = "LibraryVariableSetView"
    LIBRARY_VARIABLE_SET_CREATE = "LibraryVariableSetCreate"
    LIBRARY_VARIABLE_SET_EDIT = "LibraryVariableSetEdit"
    LIBRARY_VARIABLE_SET_DELETE = "LibraryVariableSetDelete"
    TRIGGER_VIEW = "TriggerView"
    TRIGGER_EDIT = "TriggerEdit"
    RELEASE_VIEW = "ReleaseView"
    RELEASE_CREATE = "ReleaseCreate"
    RELEASE_EDIT = "ReleaseEdit"
    RELEASE_DELETE = "ReleaseDelete"
    DEPLOYMENT_VIEW = "DeploymentView"
    DEPLOYMENT_CREATE = "DeploymentCreate"
    ENVIRONMENT_VIEW = "EnvironmentView"
    ENVIRONMENT_CREATE = "EnvironmentCreate"
    ENVIRONMENT_EDIT = "EnvironmentEdit"
    ENVIRONMENT_DELETE = "EnvironmentDelete"
    LIFECYCLE_VIEW = "LifecycleView"
    LIFECYCLE_CREATE = "LifecycleCreate"
    LIFECYCLE_EDIT = "LifecycleEdit"
    LIFECYCLE_DELETE = "LifecycleDelete"
    MACHINE_VIEW = "MachineView"
    MACHINE_CREATE = "MachineCreate"
    MACHINE_EDIT = "MachineEdit"
    MACHINE_DELETE = "MachineDelete"
    WORKER_VIEW = "WorkerView"
    WORKER_EDIT = "WorkerEdit"
    TASK_VIEW = "TaskView"
    TASK_CREATE = "TaskCreate"
    TASK_CANCEL = "TaskCancel"
    ARTIFACT_VIEW = "ArtifactView"
    INTERRUPTION_VIEW = "InterruptionView"
    INTERRUPTION_SUBMIT = "InterruptionSubmit"
    FEED_VIEW = "FeedView"
    FEED_EDIT = "FeedEdit"
    BUILT_IN_FEED_PUSH = "BuiltInFeedPush"
    BUILT_IN_FEED_DOWNLOAD = "BuiltInFeedDownload"
    BUILT_IN_FEED_ADMINISTER = "BuiltInFeedAdminister"
    WEBHOOK_VIEW = "WebhookView"
    WEBHOOK_EDIT = "WebhookEdit"


SYSTEM_PERMISSIONS = frozenset(
    {
        Permission.ADMINISTER_SYSTEM,
        Permission.USER_VIEW,
        Permission.USER_EDIT,
        Permission.TEAM_VIEW,
        Permission.TEAM_EDIT,
        Permission.USER_ROLE_VIEW,
        Permission.SPACE_CREATE,
    }
)
"""Granted only by assignments on no particular space and with no other restriction."""

SPACE_PERMISSIONS = frozenset(Permission) - SYSTEM_PERMISSIONS


@dataclass(frozen=True)
class Role:
    name: str
    title: str
    description: str
    permissions: frozenset[Permission]

    @property
    def is_system(self) -> bool:
        return bool(self.permissions & SYSTEM_PERMISSIONS)


P = Permission
_PROJECT_VIEW = frozenset(
    {
        P.PROJECT_VIEW,
        P.PROJECT_GROUP_VIEW,
        P.PROCESS_VIEW,
        P.VARIABLE_VIEW,
        P.LIBRARY_VARIABLE_SET_VIEW,
        P.TRIGGER_VIEW,
        P.RELEASE_VIEW,
        P.DEPLOYMENT_VIEW,
        P.ENVIRONMENT_VIEW,
        P.LIFECYCLE_VIEW,
        P.MACHINE_VIEW,
        P.TASK_VIEW,
        P.ARTIFACT_VIEW,
        P.INTERRUPTION_VIEW,
        P.FEED_VIEW,
        P.EVENT_VIEW,
    }
)
_PROJECT_CONTRIBUTE = _PROJECT_VIEW | {
    P.PROJECT_EDIT,
    P.PROCESS_EDIT,
    P.VARIABLE_EDIT,
    P.TRIGGER_EDIT,
}
_DEPLOY = frozenset({P.DEPLOYMENT_CREATE, P.TASK_CREATE, P.TASK_CANCEL, P.INTERRUPTION_SUBMIT})
_RELEASE = frozenset({P.RELEASE_CREATE, P.RELEASE_EDIT, P.RELEASE_DELETE})

ADMINISTRATOR = "administrator"
BUILT_IN_ROLES: Mapping[str, Role] = {
    role.name: role
    for role in (
        Role(
            ADMINISTRATOR,
            "System administrator",
            "Everything, in every space, including users, teams and API keys.",
            frozenset(Permission),
        ),
        Role(
            "space-manager",
            "Space manager",
            "Everything inside the space it is assigned in.",
            SPACE_PERMISSIONS,
        ),
        Role("project-viewer", "Project viewer", "Read projects and their history.", _PROJECT_VIEW),
        Role(
            "project-contributor",
            "Project contributor",
            "Edit projects, processes and variables; no releases or deployments.",
            _PROJECT_CONTRIBUTE,
        ),
        Role(
            "project-deployer",
            "Project deployer",
            "A contributor who may deploy existing releases.",
            _PROJECT_CONTRIBUTE | _DEPLOY,
        ),
        Role(
            "project-lead",
            "Project lead",
            "A contributor who may create releases (not deploy them).",
            _PROJECT_CONTRIBUTE | _RELEASE | {P.PROJECT_CREATE, P.PROJECT_DELETE},
        ),
        Role(
            "release-creator",
            "Release creator",
            "Create releases of the projects it can see.",
            _PROJECT_VIEW | {P.RELEASE_CREATE},
        ),
        Role(
            "environment-manager",
            "Environment manager",
            "Manage environments, deployment targets and workers.",
            frozenset(
                {
                    P.ENVIRONMENT_VIEW,
                    P.ENVIRONMENT_CREATE,
                    P.ENVIRONMENT_EDIT,
                    P.ENVIRONMENT_DELETE,
                    P.MACHINE_VIEW,
                    P.MACHINE_CREATE,
                    P.MACHINE_EDIT,
                    P.MACHINE_DELETE,
                    P.WORKER_VIEW,
                    P.WORKER_EDIT,
                    P.LIFECYCLE_VIEW,
                    P.TASK_VIEW,
                }
            ),
        ),
        Role(
            "package-publisher",
            "Package publisher",
            "Push packages to the built-in feed.",
            frozenset({P.FEED_VIEW, P.BUILT_IN_FEED_PUSH, P.BUILT_IN_FEED_DOWNLOAD}),
        ),
        Role(
            "build-server",
            "Build server",
            "Push packages, create releases and deploy them (what CI needs).",
            frozenset(
                {
                    P.FEED_VIEW,
                    P.BUILT_IN_FEED_PUSH,
                    P.BUILT_IN_FEED_DOWNLOAD,
                    P.PROJECT_VIEW,
                    P.PROJECT_GROUP_VIEW,
                    P.PROCESS_VIEW,
                    P.RELEASE_VIEW,
                    P.RELEASE_CREATE,
                    P.DEPLOYMENT_VIEW,
                    P.DEPLOYMENT_CREATE,
                    P.ENVIRONMENT_VIEW,
                    P.LIFECYCLE_VIEW,
                    P.TASK_VIEW,
                    P.TASK_CREATE,
                    P.ARTIFACT_VIEW,
                }
            ),
        ),
    )
}


@dataclass(frozen=True)
class Grant:
    """One scoped role assignment of one of the user's teams."""

    role: str
    space_id: uuid.UUID | None = None
    project_ids: frozenset[uuid.UUID] = frozenset()
    project_group_ids: frozenset[uuid.UUID] = frozenset()
    environment_ids: frozenset[uuid.UUID] = frozenset()

    @property
    def permissions(self) -> frozenset[Permission]:
        role = BUILT_IN_ROLES.get(self.role)
        return role.permissions if role else frozenset()

    @property
    def restricted(self) -> bool:
        return bool(self.project_ids or self.project_group_ids or self.environment_ids)


@dataclass(frozen=True)
class ObjectScope:
    """Where an object lives; None or empty means the object has no such dimension."""

    space_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    project_group_id: uuid.UUID | None = None
    environment_ids: frozenset[uuid.UUID] = frozenset()


def _covers_space(grant: Grant, space_id: uuid.UUID | None) -> bool:
    return grant.space_id is None or space_id is None or grant.space_id == space_id


def _covers(grant: Grant, scope: ObjectScope) -> bool:
    if not _covers_space(grant, scope.space_id):
        return False
    if (grant.project_ids or grant.project_group_ids) and scope.project_id is not None:
        in_projects = scope.project_id in grant.project_ids
        in_groups = scope.project_group_id in grant.project_group_ids
        if not (in_projects or in_groups):
            return False
    if grant.environment_ids and scope.environment_ids:
        return bool(grant.environment_ids & scope.environment_ids)
    return True


def _grants_permission(grant: Grant, permission: Permission) -> bool:
    if permission not in grant.permissions:
        return False
    if permission in SYSTEM_PERMISSIONS:
        return grant.space_id is None and not grant.restricted
    return True


def is_administrator(grants: Iterable[Grant]) -> bool:
    return any(_grants_permission(g, Permission.ADMINISTER_SYSTEM) for g in grants)


def is_allowed(grants: Iterable[Grant], permission: Permission, scope: ObjectScope) -> bool:
    """Whether any grant gives `permission` on an object in `scope`."""
    return any(_grants_permission(g, permission) and _covers(g, scope) for g in grants)


def allowed_without_lookup(
    grants: Iterable[Grant], permission: Permission, space_id: uuid.UUID | None
) -> bool:
    """True when an unrestricted grant settles it, so the object need not be looked up."""
    return any(
        _grants_permission(g, permission) and not g.restricted and _covers_space(g, space_id)
        for g in grants
    )


def can_enter_space(grants: Iterable[Grant], space_id: uuid.UUID) -> bool:
    """Any assignment in the space (or in every space): otherwise the space is not shown."""
    return any(g.permissions and (g.space_id is None or g.space_id == space_id) for g in grants)


def permissions_in(grants: Iterable[Grant], scope: ObjectScope) -> frozenset[Permission]:
    """Everything the grants allow on an object in `scope` (the "test permissions" view)."""
    allowed: set[Permission] = set()
    for grant in grants:
        if _covers(grant, scope):
            allowed |= {p for p in grant.permissions if _grants_permission(grant, p)}
    return frozenset(allowed)


# Which permission each route needs ------------------------------------------------------

ANY = "*"
"""A rule method or segment that matches anything; a trailing `**` matches any tail."""


class Kind(StrEnum):
    """What a path segment or body field names, so its scope can be looked up."""

    SPACE = "space"
    PROJECT = "project"
    PROJECT_GROUP = "project_group"
    ENVIRONMENT = "environment"
    ENVIRONMENTS = "environments"
    RELEASE = "release"
    DEPLOYMENT = "deployment"
    TASK = "task"
    MACHINE = "machine"


@dataclass(frozen=True)
class Rule:
    """`pattern` is path segments after `/api/v1`; `{kind}` captures an object reference."""

    methods: frozenset[str]
    pattern: tuple[str, ...]
    permission: Permission | None
    body: Mapping[str, Kind] = field(default_factory=dict)


@dataclass(frozen=True)
class Requirement:
    """What a request needs: a permission (None: any access to the space, or just being
    signed in outside spaces), the space, and references to the objects it touches."""

    permission: Permission | None
    space: str | None
    refs: Mapping[Kind, str]
    body: Mapping[str, Kind]


def _rule(methods: str, path: str, permission: Permission | None, **body: Kind) -> Rule:
    return Rule(frozenset(methods.split(",")), tuple(path.split("/")), permission, body)


READ = "GET,HEAD"
WRITE = "POST,PUT,PATCH,DELETE"
S = "spaces/{space}"
RULES: Sequence[Rule] = (
    _rule(READ, "spaces", None),
    _rule("POST", "spaces", P.SPACE_CREATE),
    _rule(READ, S, None),
    _rule(READ, "server-certificate", None),
    _rule(READ, f"{S}/environments", P.ENVIRONMENT_VIEW),
    _rule("POST", f"{S}/environments", P.ENVIRONMENT_CREATE),
    _rule("POST", f"{S}/environments/reorder", P.ENVIRONMENT_EDIT),
    _rule(READ, f"{S}/environments/{{environment}}", P.ENVIRONMENT_VIEW),
    _rule("PUT,PATCH", f"{S}/environments/{{environment}}", P.ENVIRONMENT_EDIT),
    _rule("DELETE", f"{S}/environments/{{environment}}", P.ENVIRONMENT_DELETE),
    _rule(READ, f"{S}/environments/{{environment}}/**", P.ENVIRONMENT_VIEW),
    _rule(WRITE, f"{S}/environments/{{environment}}/**", P.ENVIRONMENT_EDIT),
    _rule(READ, f"{S}/lifecycles/**", P.LIFECYCLE_VIEW),
    _rule("POST", f"{S}/lifecycles", P.LIFECYCLE_CREATE),
    _rule("PUT,PATCH,POST", f"{S}/lifecycles/**", P.LIFECYCLE_EDIT),
    _rule("DELETE", f"{S}/lifecycles/**", P.LIFECYCLE_DELETE),
    _rule(READ, f"{S}/project-groups", P.PROJECT_GROUP_VIEW),
    _rule("POST", f"{S}/project-groups", P.PROJECT_GROUP_CREATE),
    _rule(READ, f"{S}/project-groups/{{project_group}}/**", P.PROJECT_GROUP_VIEW),
    _rule("PUT,PATCH,POST", f"{S}/project-groups/{{project_group}}/**", P.PROJECT_GROUP_EDIT),
    _rule("DELETE", f"{S}/project-groups/{{project_group}}", P.PROJECT_GROUP_DELETE),
    _rule(READ, f"{S}/projects", P.PROJECT_VIEW),
    _rule("POST", f"{S}/projects", P.PROJECT_CREATE),
    _rule(READ, f"{S}/projects/{{project}}", P.PROJECT_VIEW),
    _rule("PUT,PATCH", f"{S}/projects/{{project}}", P.PROJECT_EDIT),
    _rule("DELETE", f"{S}/projects/{{project}}", P.PROJECT_DELETE),
    _rule(READ, f"{S}/projects/{{project}}/deployment-process/**", P.PROCESS_VIEW),
    _rule(WRITE, f"{S}/projects/{{project}}/deployment-process/**", P.PROCESS_EDIT),
    _rule(READ, f"{S}/projects/{{project}}/variables/**", P.VARIABLE_VIEW),
    _rule(WRITE, f"{S}/projects/{{project}}/variables/**", P.VARIABLE_EDIT),
    _rule(READ, f"{S}/projects/{{project}}/triggers/**", P.TRIGGER_VIEW),
    _rule(WRITE, f"{S}/projects/{{project}}/triggers/**", P.TRIGGER_EDIT),
    _rule(READ, f"{S}/projects/{{project}}/releases/**", P.RELEASE_VIEW),
    _rule("POST", f"{S}/projects/{{project}}/releases", P.RELEASE_CREATE),
    _rule(READ, f"{S}/projects/{{project}}/**", P.PROJECT_VIEW),
    _rule(WRITE, f"{S}/projects/{{project}}/**", P.PROJECT_EDIT),
    _rule(READ, f"{S}/releases", P.RELEASE_VIEW),
    _rule(READ, f"{S}/releases/{{release}}/**", P.RELEASE_VIEW),
    _rule("DELETE", f"{S}/releases/{{release}}", P.RELEASE_DELETE),
    _rule("POST", f"{S}/releases/{{release}}/snapshot-variables", P.RELEASE_EDIT),
    _rule(READ, f"{S}/deployments", P.DEPLOYMENT_VIEW),
    _rule(
        "POST",
        f"{S}/deployments",
        P.DEPLOYMENT_CREATE,
        release_id=Kind.RELEASE,
        environment_id=Kind.ENVIRONMENT,
    ),
    _rule(
        "POST",
        f"{S}/deployments/rollback",
        P.DEPLOYMENT_CREATE,
        project=Kind.PROJECT,
        environment=Kind.ENVIRONMENT,
    ),
    _rule(READ, f"{S}/deployments/{{deployment}}/**", P.DEPLOYMENT_VIEW),
    _rule("POST", f"{S}/deployments/{{deployment}}/redeploy", P.DEPLOYMENT_CREATE),
    _rule(READ, f"{S}/dashboard/**", P.PROJECT_VIEW),
    _rule(READ, f"{S}/library-variable-sets/**", P.LIBRARY_VARIABLE_SET_VIEW),
    _rule("POST", f"{S}/library-variable-sets", P.LIBRARY_VARIABLE_SET_CREATE),
    _rule("PUT,PATCH,POST", f"{S}/library-variable-sets/**", P.LIBRARY_VARIABLE_SET_EDIT),
    _rule("DELETE", f"{S}/library-variable-sets/**", P.LIBRARY_VARIABLE_SET_DELETE),
    _rule(READ, f"{S}/package-references", P.RELEASE_VIEW),
    _rule(READ, f"{S}/variables/**", P.VARIABLE_VIEW),
    _rule(WRITE, f"{S}/variables/**", P.VARIABLE_EDIT),
    _rule(
        "POST",
        f"{S}/deployment-plans",
        P.DEPLOYMENT_CREATE,
        project_id=Kind.PROJECT,
        environment_id=Kind.ENVIRONMENT,
    ),
    _rule(READ, f"{S}/tasks", P.TASK_VIEW),
    _rule(READ, f"{S}/tasks/{{task}}/artifacts/**", P.ARTIFACT_VIEW),
    _rule(READ, f"{S}/tasks/{{task}}/**", P.TASK_VIEW),
    _rule("POST", f"{S}/tasks/{{task}}/interruptions/**", P.INTERRUPTION_SUBMIT),
    _rule(WRITE, f"{S}/tasks/{{task}}/**", P.TASK_CANCEL),
    _rule(READ, f"{S}/machines", P.MACHINE_VIEW),
    _rule("POST", f"{S}/machines", P.MACHINE_CREATE, environments=Kind.ENVIRONMENTS),
    _rule("POST", f"{S}/machines/register", P.MACHINE_CREATE, environments=Kind.ENVIRONMENTS),
    _rule("POST", f"{S}/machines/ssh", P.MACHINE_CREATE, environments=Kind.ENVIRONMENTS),
    _rule("POST", f"{S}/machines/offline-drop", P.MACHINE_CREATE, environments=Kind.ENVIRONMENTS),
    _rule(READ, f"{S}/machines/pending/**", P.MACHINE_VIEW),
    _rule("POST", f"{S}/machines/pending", P.MACHINE_CREATE, environments=Kind.ENVIRONMENTS),
    _rule(WRITE, f"{S}/machines/pending/**", P.MACHINE_CREATE),
    _rule(READ, f"{S}/machines/{{machine}}/**", P.MACHINE_VIEW),
    _rule("DELETE", f"{S}/machines/{{machine}}", P.MACHINE_DELETE),
    _rule(WRITE, f"{S}/machines/{{machine}}/**", P.MACHINE_EDIT),
    _rule(READ, f"{S}/machine-policies/**", P.MACHINE_VIEW),
    _rule(WRITE, f"{S}/machine-policies/**", P.MACHINE_EDIT),
    _rule(READ, f"{S}/script-runs/**", P.TASK_VIEW),
    _rule(WRITE, f"{S}/script-runs/**", P.TASK_CANCEL),
    _rule(READ, f"{S}/workers/**", P.WORKER_VIEW),
    _rule(WRITE, f"{S}/workers/**", P.WORKER_EDIT),
    _rule(READ, f"{S}/worker-pools/**", P.WORKER_VIEW),
    _rule(WRITE, f"{S}/worker-pools/**", P.WORKER_EDIT),
    _rule(READ, f"{S}/packages", P.FEED_VIEW),
    _rule(READ, f"{S}/packages/*", P.FEED_VIEW),
    _rule(READ, f"{S}/packages/**", P.BUILT_IN_FEED_DOWNLOAD),
    _rule("POST", f"{S}/packages", P.BUILT_IN_FEED_PUSH),
    _rule("POST", f"{S}/packages/raw", P.BUILT_IN_FEED_PUSH),
    _rule("POST", f"{S}/packages/*/versions/*/download-url", P.BUILT_IN_FEED_DOWNLOAD),
    _rule(WRITE, f"{S}/packages/**", P.BUILT_IN_FEED_ADMINISTER),
    _rule(READ, f"{S}/feeds/**", P.FEED_VIEW),
    _rule(WRITE, f"{S}/feeds/**", P.FEED_EDIT),
)
"""First match wins; a proxied route that matches none is refused to all but
administrators (fail closed), so a new upstream route must be added here."""


def _match(pattern: tuple[str, ...], segments: Sequence[str]) -> dict[Kind, str] | None:
    refs: dict[Kind, str] = {}
    for index, part in enumerate(pattern):
        if part == "**":
            return refs
        if index >= len(segments):
            return None
        segment = segments[index]
        if part.startswith("{") and part.endswith("}"):
            refs[Kind(part[1:-1])] = segment
        elif part != ANY and part != segment:
            return None
    return refs if len(segments) == len(pattern) else None


def requirement_for(method: str, segments: Sequence[str]) -> Requirement | None:
    """The requirement of `method` on the decoded path segments after `/api/v1`."""
    method = method.upper()
    if method == "OPTIONS":
        method = "GET"
    for rule in RULES:
        if method not in rule.methods:
            continue
        refs = _match(rule.pattern, segments)
        if refs is None:
            continue
        space = refs.pop(Kind.SPACE, None)
        return Requirement(rule.permission, space, refs, rule.body)
    return None
