"""Typed dependencies for routes: one unit of work per request, the space resolved once."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path

from cephalo_common.http.app import SessionDep
from cephalo_release.db.models import Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.spaces import resolve_space


def _repositories(session: SessionDep) -> Repositories:
    return Repositories(session)


ReposDep = Annotated[Repositories, Depends(_repositories)]


async def _space(repos: ReposDep, space: Annotated[str, Path(max_length=200)]) -> Space:
    return await resolve_space(repos, space)


SpaceDep = Annotated[Space, Depends(_space)]
