from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cephalo_release.api.conventions import IfMatchDep, PagingDep, etag, expected_version, page
from cephalo_release.db.models import Lifecycle as LifecycleRow
from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.lifecycles import (
    create_lifecycle,
    get_lifecycle,
    rendered_phases,
    update_lifecycle,
)
from cephalo_release.schemas.common import Page
from cephalo_release.schemas.lifecycles import Lifecycle, LifecycleCreate, LifecycleUpdate

router = APIRouter(prefix="/api/v1/spaces/{space}/lifecycles", tags=["lifecycles"])


def render(lifecycle: LifecycleRow) -> Lifecycle:
    return Lifecycle.model_validate(
        {
            **{c: getattr(lifecycle, c) for c in Lifecycle.model_fields if c != "phases"},
            "phases": rendered_phases(lifecycle),
        }
    )


@router.get("")
async def list_lifecycles(
    request: Request, paging: PagingDep, space: SpaceDep, repos: ReposDep
) -> Page[Lifecycle]:
    rows = await repos.lifecycles.page_in_space(
        space.id, skip=paging.skip, take=paging.take, partial_name=paging.partial_name
    )
    return page(request, rows, render)


@router.post("", status_code=201)
async def create(
    body: LifecycleCreate, response: Response, space: SpaceDep, repos: ReposDep
) -> Lifecycle:
    data = body.model_dump(mode="json")
    lifecycle = await create_lifecycle(
        repos,
        space,
        name=body.name,
        slug=body.slug,
        description=body.description,
        release_retention_policy=data["release_retention_policy"],
        target_retention_policy=data["target_retention_policy"],
        phases=data["phases"],
    )
    etag(response, lifecycle.version)
    return render(lifecycle)


@router.get("/{lifecycle}")
async def get(lifecycle: str, response: Response, space: SpaceDep, repos: ReposDep) -> Lifecycle:
    found = await get_lifecycle(repos, space, lifecycle)
    etag(response, found.version)
    return render(found)


@router.put("/{lifecycle}")
async def put(
    lifecycle: str,
    body: LifecycleUpdate,
    if_match: IfMatchDep,
    response: Response,
    space: SpaceDep,
    repos: ReposDep,
) -> Lifecycle:
    found = await get_lifecycle(repos, space, lifecycle)
    data = body.model_dump(mode="json")
    updated = await update_lifecycle(
        repos,
        space,
        found,
        expected_version=expected_version(body.version, if_match),
        name=body.name,
        slug=body.slug,
        description=body.description,
        release_retention_policy=data["release_retention_policy"],
        target_retention_policy=data["target_retention_policy"],
        phases=data["phases"],
    )
    etag(response, updated.version)
    return render(updated)
