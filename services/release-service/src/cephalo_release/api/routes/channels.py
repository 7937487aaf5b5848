from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from cephalo_release.api.conventions import IfMatchDep, PagingDep, etag, expected_version, page
from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.channels import create_channel, get_channel, try_rule, update_channel
from cephalo_release.domain.projects import get_project
from cephalo_release.schemas.channels import Channel, ChannelCreate, ChannelUpdate, RuleTrial
from cephalo_release.schemas.common import Page

router = APIRouter(prefix="/api/v1/spaces/{space}/projects/{project}/channels", tags=["channels"])


@router.get("")
async def list_channels(
    project: str, request: Request, paging: PagingDep, space: SpaceDep, repos: ReposDep
) -> Page[Channel]:
    found = await get_project(repos, space, project)
    rows = await repos.channels.page_in_project(
        found.id, skip=paging.skip, take=paging.take, partial_name=paging.partial_name
    )
    return page(request, rows, Channel.model_validate)


@router.post("", status_code=201)
async def create(
    project: str, body: ChannelCreate, response: Response, space: SpaceDep, repos: ReposDep
) -> Channel:
    found = await get_project(repos, space, project)
    data = body.model_dump(mode="json")
    channel = await create_channel(repos, space, found, **data)
    etag(response, channel.version)
    return Channel.model_validate(channel)


@router.get("/rule-test")
async def rule_test(
    project: str,
    space: SpaceDep,
    repos: ReposDep,
    version: Annotated[str, Query(min_length=1, max_length=200)],
    version_range: Annotated[str, Query(max_length=500)] = "",
    tag: Annotated[str, Query(max_length=500)] = "",
) -> RuleTrial:
    """Whether `version` passes a version rule (range and pre-release tag), before saving it.

    Declared before `/{channel}`, so a channel slugged `rule-test` is reached by its id."""
    await get_project(repos, space, project)
    trial = try_rule(version, version_range, tag)
    return RuleTrial(
        version=trial.version,
        version_range=trial.version_range,
        tag=trial.tag,
        is_version=trial.is_version,
        satisfies_version_range=trial.satisfies_version_range,
        satisfies_tag=trial.satisfies_tag,
        matches=trial.matches,
    )


@router.get("/{channel}")
async def get(
    project: str, channel: str, response: Response, space: SpaceDep, repos: ReposDep
) -> Channel:
    found = await get_channel(repos, await get_project(repos, space, project), channel)
    etag(response, found.version)
    return Channel.model_validate(found)


@router.put("/{channel}")
async def put(
    project: str,
    channel: str,
    body: ChannelUpdate,
    if_match: IfMatchDep,
    response: Response,
    space: SpaceDep,
    repos: ReposDep,
) -> Channel:
    owner = await get_project(repos, space, project)
    found = await get_channel(repos, owner, channel)
    updated = await update_channel(
        repos,
        space,
        owner,
        found,
        expected_version=expected_version(body.version, if_match),
        **body.model_dump(mode="json", exclude={"version"}),
    )
    etag(response, updated.version)
    return Channel.model_validate(updated)
