"""Project variables, library variable sets, release variable snapshots and the preview."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response

from cephalo_common.errors import NotFound
from cephalo_common.variables import ResolutionContext
from cephalo_release.api.conventions import IfMatchDep, PagingDep, etag, expected_version, page
from cephalo_release.db.models import Project, Release, Space
from cephalo_release.db.models import VariableSet as SetRow
from cephalo_release.db.repositories import Repositories
from cephalo_release.db.variable_repositories import VariableSetRepository
from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain import secrets
from cephalo_release.domain.channels import get_channel
from cephalo_release.domain.environments import get_environment
from cephalo_release.domain.process import canonical_step
from cephalo_release.domain.projects import get_process, get_project, process_steps
from cephalo_release.domain.releases import get_release
from cephalo_release.domain.variable_snapshots import (
    current_entries,
    preview,
    snapshot_entries,
    take_snapshot,
)
from cephalo_release.domain.variables import (
    SENSITIVE,
    Saved,
    create_library_set,
    delete_library_set,
    read_library_set,
    read_project_variables,
    update_library_set,
    update_project_variables,
)
from cephalo_release.schemas.common import Page
from cephalo_release.schemas.variables import (
    LibrarySetRef,
    LibraryVariableSet,
    LibraryVariableSetCreate,
    LibraryVariableSetUpdate,
    NoNul,
    ProjectVariables,
    ProjectVariablesUpdate,
    ReleaseVariables,
    VariableOut,
    VariablePreview,
)

router = APIRouter(prefix="/api/v1/spaces/{space}", tags=["variables"])
Ids = Annotated[list[str], Query(max_length=50)]
Ref = Annotated[str | None, NoNul]
SetRef = Annotated[str, Path(max_length=200, pattern=r"^[^\x00]*$")]


def _variable(item: dict[str, Any], stored: set[str]) -> dict[str, Any]:
    sensitive = item["type"] == SENSITIVE
    return {
        **item,
        "value": None if sensitive else item.get("value"),
        "is_sensitive": sensitive,
        "has_value": item["id"] in stored if sensitive else True,
    }


def _variables(saved: Saved) -> list[VariableOut]:
    return [VariableOut.model_validate(_variable(i, saved.stored)) for i in saved.row.variables]


def _project_variables(saved: Saved, response: Response) -> ProjectVariables:
    etag(response, saved.row.version)
    return ProjectVariables(
        id=saved.row.id,
        project_id=saved.row.project_id,
        space_id=saved.row.space_id,
        version=saved.row.version,
        variables=_variables(saved),
        library_variable_sets=[LibrarySetRef(id=s.id, name=s.name) for s in saved.included],
    )


def _library_set(saved: Saved, response: Response | None = None) -> LibraryVariableSet:
    if response is not None:
        etag(response, saved.row.version)
    row = saved.row
    return LibraryVariableSet(
        id=row.id,
        space_id=row.space_id,
        name=row.name,
        slug=row.slug,
        description=row.description,
        version=row.version,
        variables=_variables(saved),
        created_at=row.created_at,
    )


@router.get("/projects/{project}/variables")
async def get_project_variables(
    project: str, response: Response, space: SpaceDep, repos: ReposDep
) -> ProjectVariables:
    """Sensitive values are never returned: `value` is None and `has_value` says one is stored."""
    found = await get_project(repos, space, project)
    return _project_variables(await read_project_variables(repos, found), response)


@router.put("/projects/{project}/variables")
async def put_project_variables(
    project: str,
    body: ProjectVariablesUpdate,
    if_match: IfMatchDep,
    response: Response,
    space: SpaceDep,
    repos: ReposDep,
) -> ProjectVariables:
    """The whole list; a sensitive variable sent with its `id` and no `value` keeps its secret."""
    found = await get_project(repos, space, project)
    saved = await update_project_variables(
        repos,
        space,
        found,
        expected_version=expected_version(body.version, if_match),
        variables=[item.model_dump(mode="json") for item in body.variables],
        library_sets=body.library_variable_sets,
    )
    return _project_variables(saved, response)


@router.get("/library-variable-sets")
async def list_library_sets(
    request: Request, paging: PagingDep, space: SpaceDep, repos: ReposDep
) -> Page[LibraryVariableSet]:
    rows = await VariableSetRepository(repos.session).page_libraries(
        space.id, skip=paging.skip, take=paging.take, partial_name=paging.partial_name
    )
    stored = {row.id: await secrets.stored_ids(repos.session, row.id) for row in rows.items}

    def render(row: SetRow) -> LibraryVariableSet:
        return _library_set(Saved(row, stored[row.id], []))

    return page(request, rows, render)


@router.post("/library-variable-sets", status_code=201)
async def create_library(
    body: LibraryVariableSetCreate, response: Response, space: SpaceDep, repos: ReposDep
) -> LibraryVariableSet:
    saved = await create_library_set(
        repos,
        space,
        name=body.name,
        description=body.description,
        variables=[item.model_dump(mode="json") for item in body.variables],
    )
    return _library_set(saved, response)


@router.get("/library-variable-sets/{ref}")
async def get_library(
    ref: SetRef, response: Response, space: SpaceDep, repos: ReposDep
) -> LibraryVariableSet:
    return _library_set(await read_library_set(repos, space, ref), response)


@router.put("/library-variable-sets/{ref}")
async def put_library(
    ref: SetRef,
    body: LibraryVariableSetUpdate,
    if_match: IfMatchDep,
    response: Response,
    space: SpaceDep,
    repos: ReposDep,
) -> LibraryVariableSet:
    saved = await update_library_set(
        repos,
        space,
        ref,
        expected_version=expected_version(body.version, if_match),
        name=body.name,
        description=body.description,
        variables=[item.model_dump(mode="json") for item in body.variables],
    )
    return _library_set(saved, response)


@router.delete("/library-variable-sets/{ref}", status_code=204)
async def delete_library(
    ref: SetRef, if_match: IfMatchDep, space: SpaceDep, repos: ReposDep
) -> Response:
    """Refused (409) while a project includes the set."""
    await delete_library_set(repos, space, ref, if_match)
    return Response(status_code=204)


async def _context(
    repos: Repositories,
    space: Space,
    project: Project,
    steps: list[dict[str, Any]],
    *,
    environment: str | None,
    channel: str | None,
    machine: str | None,
    role: list[str],
    step: str | None,
    tenant: str | None,
    tenant_tag: list[str],
) -> ResolutionContext:
    action_id, step_roles = None, frozenset(role if machine is None else ())
    if step is not None:
        action_id, targeted = _find_action(steps, step)
        step_roles = frozenset(targeted)
    return ResolutionContext(
        environment=str((await get_environment(repos, space, environment)).id)
        if environment
        else None,
        channel=str((await get_channel(repos, project, channel)).id) if channel else None,
        machine=machine,
        machine_roles=frozenset(role) if machine is not None else frozenset(),
        step_roles=step_roles,
        action=action_id,
        tenant=tenant,
        tenant_tags=frozenset(tenant_tag),
        process=str(project.id),
        project=str(project.id),
    )


def _find_action(steps: list[dict[str, Any]], ref: str) -> tuple[str, list[str]]:
    """An action by id or name (a step's name finds its first action)."""
    folded = ref.lower()
    for raw in steps:
        step = canonical_step(raw)
        for action in step.get("actions", []):
            names = {str(action.get("id", "")).lower(), str(action.get("name") or "").lower()}
            if folded in names or (folded == str(step.get("name", "")).lower()):
                return str(action["id"]), list(step.get("target_roles", []))
    raise NotFound(f"no step or action {ref!r} in the deployment process")


@router.get("/projects/{project}/variables/preview")
async def preview_project(
    project: str,
    space: SpaceDep,
    repos: ReposDep,
    environment: Ref = None,
    channel: Ref = None,
    machine: Ref = None,
    role: Ids = [],  # noqa: B006 - FastAPI copies query defaults
    step: Ref = None,
    tenant: Ref = None,
    tenant_tag: Ids = [],  # noqa: B006
) -> VariablePreview:
    """What every variable resolves to in this context and why (sensitive values masked)."""
    found = await get_project(repos, space, project)
    steps = process_steps(await get_process(repos, found))
    context = await _context(
        repos, space, found, steps, environment=environment, channel=channel, machine=machine,
        role=role, step=step, tenant=tenant, tenant_tag=tenant_tag,
    )  # fmt: skip
    return VariablePreview.model_validate(preview(await current_entries(repos, found), context))


@router.get("/releases/{release_id}/variables")
async def release_variables(
    release_id: uuid.UUID, space: SpaceDep, repos: ReposDep
) -> ReleaseVariables:
    """The release's variable snapshot (sensitive values never shown)."""
    release = await get_release(repos, space, release_id)
    return _release_variables(release)


def _release_variables(release: Release) -> ReleaseVariables:
    snapshot = release.variables_snapshot
    entries = snapshot_entries(release)
    stored = {e["id"] for e in entries if e.get("has_value")}
    return ReleaseVariables.model_validate(
        {
            "release_id": release.id,
            "taken_at": snapshot.get("taken_at"),
            "project_variables_version": snapshot.get("project_variables_version"),
            "library_sets": snapshot.get("library_sets", []),
            "variables": [{**e, **_variable(e, stored)} for e in entries],
        }
    )


@router.post("/releases/{release_id}/snapshot-variables")
async def snapshot_variables(
    release_id: uuid.UUID, space: SpaceDep, repos: ReposDep
) -> ReleaseVariables:
    """ "Update variables": a new snapshot of the variables; the process and packages stay."""
    release = await get_release(repos, space, release_id)
    project = await repos.projects.get(release.project_id)
    await take_snapshot(repos, release, project)
    return _release_variables(release)


@router.get("/releases/{release_id}/variables/preview")
async def preview_release(
    release_id: uuid.UUID,
    space: SpaceDep,
    repos: ReposDep,
    environment: Ref = None,
    machine: Ref = None,
    role: Ids = [],  # noqa: B006
    step: Ref = None,
    tenant: Ref = None,
    tenant_tag: Ids = [],  # noqa: B006
) -> VariablePreview:
    """Like the project preview, from the release's snapshot, in the release's channel."""
    release = await get_release(repos, space, release_id)
    project = await repos.projects.get(release.project_id)
    context = await _context(
        repos, space, project, list(release.process_snapshot), environment=environment,
        channel=str(release.channel_id), machine=machine, role=role, step=step,
        tenant=tenant, tenant_tag=tenant_tag,
    )  # fmt: skip
    return VariablePreview.model_validate(preview(snapshot_entries(release), context))
