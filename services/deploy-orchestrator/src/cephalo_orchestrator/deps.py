"""Typed dependencies for routes: one unit of work per request."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header

from cephalo_common.errors import Unauthorized
from cephalo_common.http.app import RuntimeDep, SessionDep
from cephalo_common.messaging.artifacts import TaskArtifactStore
from cephalo_common.security import internal_token
from cephalo_orchestrator.clients.agent_gateway import AgentGatewayMachines
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain.planning import Limits
from cephalo_orchestrator.domain.targets import MachineDirectory
from cephalo_orchestrator.settings import OrchestratorSettings

HTTP_CLIENT_KEY = "agent_gateway_client"  # pragma: allowlist secret
ARTIFACT_STORE_KEY = "task_artifact_store"


def _repositories(session: SessionDep) -> Repositories:
    return Repositories(session)


ReposDep = Annotated[Repositories, Depends(_repositories)]


def _directory(runtime: RuntimeDep) -> MachineDirectory:
    return AgentGatewayMachines(runtime.extras[HTTP_CLIENT_KEY])


def _limits(runtime: RuntimeDep) -> Limits:
    settings = runtime.settings
    assert isinstance(settings, OrchestratorSettings)
    return Limits(
        max_parallel_steps=settings.max_parallel_steps,
        max_parallel_targets=settings.max_parallel_targets,
    )


def _artifact_store(runtime: RuntimeDep) -> TaskArtifactStore:
    store = runtime.extras.get(ARTIFACT_STORE_KEY)
    if not isinstance(store, TaskArtifactStore):
        store = TaskArtifactStore(runtime.settings.nats, name=f"{runtime.name}-artifacts")
        runtime.extras[ARTIFACT_STORE_KEY] = store
    return store


DirectoryDep = Annotated[MachineDirectory, Depends(_directory)]
ArtifactStoreDep = Annotated[TaskArtifactStore, Depends(_artifact_store)]
LimitsDep = Annotated[Limits, Depends(_limits)]


SERVICE_AUDIENCE = "deploy-orchestrator"


def _user(
    runtime: RuntimeDep,
    identity: Annotated[str | None, Header(alias=internal_token.HEADER)] = None,
) -> str:
    """Who is acting, from api-gateway's signed `X-Cephalo-Identity` (required for writes)."""
    if identity is None:
        raise Unauthorized(f"this action needs the caller's identity ({internal_token.HEADER})")
    secret = runtime.settings.internal_token_secret.get_secret_value().encode()
    try:
        claims = internal_token.verify(identity, SERVICE_AUDIENCE, secret)
    except internal_token.InvalidToken as error:
        raise Unauthorized(f"the caller's identity cannot be trusted: {error}") from error
    return str(claims.get("name") or claims.get("sub") or "unknown")


UserDep = Annotated[str, Depends(_user)]
