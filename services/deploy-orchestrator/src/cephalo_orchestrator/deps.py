"""Typed dependencies for routes: one unit of work per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from cephalo_common.http.app import SessionDep
from cephalo_orchestrator.db.repositories import Repositories


def _repositories(session: SessionDep) -> Repositories:
    return Repositories(session)


ReposDep = Annotated[Repositories, Depends(_repositories)]
