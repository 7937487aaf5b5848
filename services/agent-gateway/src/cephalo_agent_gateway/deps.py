"""Typed dependencies for routes: one unit of work per request, the running gateway."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_agent_gateway.runtime import Gateway, gateway_of
from cephalo_common.http.app import RuntimeDep, SessionDep


def _repositories(session: SessionDep) -> Repositories:
    return Repositories(session)


def _gateway(runtime: RuntimeDep) -> Gateway:
    return gateway_of(runtime)


ReposDep = Annotated[Repositories, Depends(_repositories)]
GatewayDep = Annotated[Gateway, Depends(_gateway)]
