"""Project triggers: automatic releases on package push, scheduled deployments."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cephalo_common.ids import utc_now
from cephalo_release.api.conventions import IfMatchDep, PagingDep, etag, expected_version, page
from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.projects import get_project
from cephalo_release.domain.triggers import (
    TriggerFields,
    create_trigger,
    delete_trigger,
    get_trigger,
    update_trigger,
)
from cephalo_release.schemas.common import Page
from cephalo_release.schemas.triggers import Trigger, TriggerCreate, TriggerUpdate

router = APIRouter(prefix="/api/v1/spaces/{space}/projects/{project}/triggers", tags=["triggers"])


def _fields(body: TriggerCreate) -> TriggerFields:
    return TriggerFields(**body.model_dump(mode="json", exclude={"version"}))


@router.get("")
async def list_triggers(
    project: str, request: Request, paging: PagingDep, space: SpaceDep, repos: ReposDep
) -> Page[Trigger]:
    found = await get_project(repos, space, project)
    rows = await repos.triggers.page_in_project(
        found.id, skip=paging.skip, take=paging.take, partial_name=paging.partial_name
    )
    return page(request, rows, Trigger.model_validate)


@router.post("", status_code=201)
async def create(
    project: str, body: TriggerCreate, response: Response, space: SpaceDep, repos: ReposDep
) -> Trigger:
    """A scheduled trigger's first run is the first cron fire after now."""
    found = await get_project(repos, space, project)
    trigger = await create_trigger(repos, space, found, _fields(body), utc_now())
    etag(response, trigger.version)
    return Trigger.model_validate(trigger)


@router.get("/{trigger}")
async def get(
    project: str, trigger: str, response: Response, space: SpaceDep, repos: ReposDep
) -> Trigger:
    found = await get_trigger(repos, await get_project(repos, space, project), trigger)
    etag(response, found.version)
    return Trigger.model_validate(found)


@router.put("/{trigger}")
async def put(
    project: str,
    trigger: str,
    body: TriggerUpdate,
    if_match: IfMatchDep,
    response: Response,
    space: SpaceDep,
    repos: ReposDep,
) -> Trigger:
    owner = await get_project(repos, space, project)
    found = await get_trigger(repos, owner, trigger)
    updated = await update_trigger(
        repos,
        space,
        owner,
        found,
        _fields(body),
        expected_version=expected_version(body.version, if_match),
        now=utc_now(),
    )
    etag(response, updated.version)
    return Trigger.model_validate(updated)


@router.delete("/{trigger}", status_code=204)
async def delete(
    project: str, trigger: str, if_match: IfMatchDep, space: SpaceDep, repos: ReposDep
) -> Response:
    """`If-Match` is optional here; a stale one is a 409."""
    found = await get_trigger(repos, await get_project(repos, space, project), trigger)
    await delete_trigger(repos, found, expected_version=if_match)
    return Response(status_code=204)
