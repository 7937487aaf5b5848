from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cephalo_release.api.conventions import IfMatchDep, PagingDep, etag, expected_version, page
from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.environments import (
    create_environment,
    get_environment,
    reorder_environments,
    update_environment,
)
from cephalo_release.schemas.common import Page
from cephalo_release.schemas.environments import (
    Environment,
    EnvironmentCreate,
    EnvironmentOrder,
    EnvironmentUpdate,
)

router = APIRouter(prefix="/api/v1/spaces/{space}/environments", tags=["environments"])


@router.get("")
async def list_environments(
    request: Request, paging: PagingDep, space: SpaceDep, repos: ReposDep
) -> Page[Environment]:
    """In sort order: the order lifecycles without phases and the dashboard use."""
    rows = await repos.environments.page_in_space(
        space.id, skip=paging.skip, take=paging.take, partial_name=paging.partial_name
    )
    return page(request, rows, Environment.model_validate)


@router.post("", status_code=201)
async def create(
    body: EnvironmentCreate, response: Response, space: SpaceDep, repos: ReposDep
) -> Environment:
    environment = await create_environment(repos, space, **body.model_dump())
    etag(response, environment.version)
    return Environment.model_validate(environment)


@router.post("/reorder")
async def reorder(body: EnvironmentOrder, space: SpaceDep, repos: ReposDep) -> list[Environment]:
    """Every environment of the space, each once, in the new order."""
    environments = await reorder_environments(repos, space, body.environment_ids)
    return [Environment.model_validate(environment) for environment in environments]


@router.get("/{environment}")
async def get(
    environment: str, response: Response, space: SpaceDep, repos: ReposDep
) -> Environment:
    """By id, slug or name: agents register with environment names."""
    found = await get_environment(repos, space, environment)
    etag(response, found.version)
    return Environment.model_validate(found)


@router.put("/{environment}")
async def put(
    environment: str,
    body: EnvironmentUpdate,
    if_match: IfMatchDep,
    response: Response,
    space: SpaceDep,
    repos: ReposDep,
) -> Environment:
    found = await get_environment(repos, space, environment)
    updated = await update_environment(
        repos,
        space,
        found,
        expected_version=expected_version(body.version, if_match),
        **body.model_dump(exclude={"version"}),
    )
    etag(response, updated.version)
    return Environment.model_validate(updated)
