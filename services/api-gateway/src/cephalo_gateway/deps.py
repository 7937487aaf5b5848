"""Typed dependencies for routes.

The edge middleware (`edge.py`) authenticates every request and leaves the caller in
`request.state.principal`; `PrincipalDep` reads it and `require(...)` checks a permission
for the gateway's own routes (proxied routes are checked in `authz.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from cephalo_common.errors import Forbidden, Unauthorized
from cephalo_common.http.app import SessionDep, get_runtime
from cephalo_gateway.db.repositories import Repositories
from cephalo_gateway.domain.identity import Principal
from cephalo_gateway.domain.permissions import ObjectScope, Permission, is_allowed
from cephalo_gateway.proxy import Gateway
from cephalo_gateway.security import Security
from cephalo_gateway.settings import GatewaySettings

GATEWAY_EXTRA = "gateway"
SECURITY_EXTRA = "security"


async def _repositories(session: SessionDep) -> Repositories:
    return Repositories(session)


async def _gateway(request: Request) -> Gateway:
    """Async, as every dependency here: FastAPI runs a plain `def` one in a worker thread,
    a thread hop per request on the proxied path (bench-api)."""
    gateway: Gateway = get_runtime(request).extras[GATEWAY_EXTRA]
    return gateway


async def _security(request: Request) -> Security:
    security: Security = get_runtime(request).extras[SECURITY_EXTRA]
    return security


async def _settings(request: Request) -> GatewaySettings:
    settings = get_runtime(request).settings
    assert isinstance(settings, GatewaySettings)
    return settings


async def _principal(request: Request) -> Principal:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise Unauthorized("sign in or send an API key")
    return principal


ReposDep = Annotated[Repositories, Depends(_repositories)]
GatewayDep = Annotated[Gateway, Depends(_gateway)]
SecurityDep = Annotated[Security, Depends(_security)]
SettingsDep = Annotated[GatewaySettings, Depends(_settings)]
PrincipalDep = Annotated[Principal, Depends(_principal)]


def require(permission: Permission) -> Callable[[Principal], Principal]:
    """A dependency that lets through only callers with `permission` (anywhere)."""

    def check(principal: PrincipalDep) -> Principal:
        if not is_allowed(principal.grants, permission, ObjectScope()):
            raise Forbidden(f"this needs the {permission} permission")
        return principal

    return check


AdminDep = Annotated[Principal, Depends(require(Permission.ADMINISTER_SYSTEM))]
