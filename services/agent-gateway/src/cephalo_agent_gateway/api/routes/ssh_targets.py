from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import SecretStr

from cephalo_agent_gateway.api.rendering import render_machine
from cephalo_agent_gateway.db import models
from cephalo_agent_gateway.deps import GatewayDep, ReposDep
from cephalo_agent_gateway.domain.ssh_accounts import SshAccount
from cephalo_agent_gateway.domain.ssh_machines import (
    SshRegistration,
    get_ssh_target,
    host_key_history,
    register_ssh_target,
    repin_host_key,
)
from cephalo_agent_gateway.runtime import Gateway
from cephalo_agent_gateway.schemas.ssh import (
    SshDetails,
    SshHostKeyEvent,
    SshHostKeyRepin,
    SshTarget,
    SshTargetRegister,
)

router = APIRouter(prefix="/api/v1/spaces/{space_id}/machines", tags=["ssh targets"])


def _render(machine: models.Machine, endpoint: models.SshEndpoint, gateway: Gateway) -> SshTarget:
    return SshTarget(
        **render_machine(machine, gateway).model_dump(), ssh=SshDetails.model_validate(endpoint)
    )


def _secret(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


@router.post("/ssh", status_code=201)
async def register(
    space_id: uuid.UUID, body: SshTargetRegister, repos: ReposDep, gateway: GatewayDep
) -> SshTarget:
    """Register an SSH target: its host key is read now and pinned (404 unknown space, 409
    duplicate name, 422 bad input or unreachable host or fingerprint mismatch, 503 without an
    account key)."""
    account = SshAccount(
        body.username,
        password=_secret(body.password),
        private_key=_secret(body.private_key),
        passphrase=_secret(body.passphrase),
    )
    registration = SshRegistration(
        name=body.name,
        environments=body.environments,
        roles=body.roles,
        host=body.host,
        port=body.port,
        account=account,
        host_key_fingerprint=body.host_key_fingerprint,
    )
    machine, endpoint = await register_ssh_target(
        repos,
        gateway.release_service,
        gateway.ssh.cipher,
        space_id,
        registration,
        gateway.ssh.capture_host_key,
    )
    gateway.machine_changed(machine.id)
    return _render(machine, endpoint, gateway)


@router.get("/{machine_id}/ssh")
async def get(
    space_id: uuid.UUID, machine_id: uuid.UUID, repos: ReposDep, gateway: GatewayDep
) -> SshTarget:
    machine, endpoint = await get_ssh_target(repos, space_id, machine_id)
    return _render(machine, endpoint, gateway)


@router.post("/{machine_id}/ssh/host-key")
async def repin(
    space_id: uuid.UUID,
    machine_id: uuid.UUID,
    body: SshHostKeyRepin,
    repos: ReposDep,
    gateway: GatewayDep,
) -> SshTarget:
    """After a deliberate host key change: pin the key the host presents now, if its
    fingerprint is the one given (422 otherwise; the old key stays pinned)."""
    machine, endpoint = await repin_host_key(
        repos, space_id, machine_id, body.fingerprint, gateway.ssh.capture_host_key
    )
    return _render(machine, endpoint, gateway)


@router.get("/{machine_id}/ssh/host-key-events")
async def host_key_events(
    space_id: uuid.UUID,
    machine_id: uuid.UUID,
    repos: ReposDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[SshHostKeyEvent]:
    """The audit trail of the host key, newest first: pinned, refused, re-pinned."""
    events = await host_key_history(repos, space_id, machine_id, limit)
    return [SshHostKeyEvent.model_validate(event) for event in events]
