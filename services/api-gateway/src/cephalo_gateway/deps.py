"""Typed dependencies for routes.

`ActorDep` is the seam for identity: authentication middleware placed in front of the
routes sets `request.state.actor`, and the proxy and audit log use it unchanged.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from cephalo_common.http.app import RuntimeDep, SessionDep
from cephalo_gateway.db.repositories import Repositories
from cephalo_gateway.domain.audit import ANONYMOUS
from cephalo_gateway.proxy import Gateway

GATEWAY_EXTRA = "gateway"


def _repositories(session: SessionDep) -> Repositories:
    return Repositories(session)


def _gateway(runtime: RuntimeDep) -> Gateway:
    gateway: Gateway = runtime.extras[GATEWAY_EXTRA]
    return gateway


def _actor(request: Request) -> str:
    return str(getattr(request.state, "actor", None) or ANONYMOUS)


ReposDep = Annotated[Repositories, Depends(_repositories)]
GatewayDep = Annotated[Gateway, Depends(_gateway)]
ActorDep = Annotated[str, Depends(_actor)]
