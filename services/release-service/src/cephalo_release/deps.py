"""Typed dependencies for routes: one unit of work per request, the space resolved once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Request

from cephalo_common.http.app import SessionDep
from cephalo_release.db.models import Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.package_versions import PackageVersionSource
from cephalo_release.domain.spaces import resolve_space


async def _repositories(session: SessionDep) -> Repositories:
    return Repositories(session)


ReposDep = Annotated[Repositories, Depends(_repositories)]


async def _space(repos: ReposDep, space: Annotated[str, Path(max_length=200)]) -> Space:
    return await resolve_space(repos, space)


SpaceDep = Annotated[Space, Depends(_space)]


PACKAGE_FEED_EXTRA = "package_feed"


def _package_source(request: Request) -> PackageVersionSource | None:
    source: PackageVersionSource | None = request.app.state.runtime.extras.get(PACKAGE_FEED_EXTRA)
    return source


PackageSourceDep = Annotated[PackageVersionSource | None, Depends(_package_source)]
