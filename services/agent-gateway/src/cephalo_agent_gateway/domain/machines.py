"""Machines: deployment targets (in environments) and workers (in worker pools).

Registration, lookup, change and removal inside one space, and the pending registrations of
agents the gateway refused: an operator approves one, which makes it a machine.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_agent_gateway.db.models import Machine, PendingRegistration
from cephalo_agent_gateway.db.repositories import TARGET, WORKER, Repositories
from cephalo_agent_gateway.domain.certificates import parse_client_certificate
from cephalo_agent_gateway.domain.worker_pools import default_pool, resolve_pools
from cephalo_agent_gateway.events import publish
from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_common.urls import OutboundPolicy, check_and_resolve

MODES = ("polling", "listening")
KINDS = (TARGET, WORKER)


class EnvironmentDirectory(Protocol):
    """Where environments live (release-service); agents name them by name or id."""

    async def space_exists(self, space_id: uuid.UUID) -> bool: ...

    async def find_environment(self, space_id: uuid.UUID, ref: str) -> uuid.UUID | None: ...


@dataclass(frozen=True)
class Registration:
    name: str
    certificate_pem: str
    environments: Sequence[str] = ()
    roles: Sequence[str] = ()
    mode: str = "polling"
    listening_url: str | None = None
    worker_pools: Sequence[str] = ()
    kind: str = TARGET


@dataclass(frozen=True)
class Registered:
    machine: Machine
    created: bool


@dataclass(frozen=True)
class MachineChanges:
    is_disabled: bool | None = None
    machine_policy_id: uuid.UUID | None = None
    roles: Sequence[str] | None = None


def _invalid(field: str, message: str) -> Invalid:
    return Invalid(message, errors=[{"field": f"body.{field}", "message": message}])


def check_listening_url(url: str | None, mode: str) -> str | None:
    """A listening machine needs `https://host[:port]`; a polling one has none."""
    if mode not in MODES:
        raise _invalid("mode", f"mode must be one of {', '.join(MODES)}")
    if mode == "polling":
        if url:
            raise _invalid("listening_url", "a polling machine has no listening_url")
        return None
    if not url:
        raise _invalid("listening_url", "a listening machine needs listening_url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - validates the port
        parts.hostname  # noqa: B018 - validates a bracketed IPv6 host
    except ValueError as error:
        raise _invalid("listening_url", f"invalid host or port in {url!r}") from error
    if parts.scheme != "https" or not parts.hostname or parts.path not in ("", "/"):
        raise _invalid(
            "listening_url", f"listening_url must look like https://host:10933, not {url!r}"
        )
    return url.rstrip("/")


async def listening_uri(url: str | None, mode: str, outbound: OutboundPolicy) -> str | None:
    """`check_listening_url`, then the outbound guard: the gateway will dial this URL, so it
    must not lead to an internal address the operator did not allow-list."""
    uri = check_listening_url(url, mode)
    if uri is not None:
        await check_and_resolve(uri, outbound, field_name="body.listening_url")
    return uri


async def register_machine(
    repos: Repositories,
    directory: EnvironmentDirectory,
    space_id: uuid.UUID,
    registration: Registration,
    *,
    outbound: OutboundPolicy,
) -> Registered:
    """Add a machine, or return it unchanged when the same agent registers again.

    The same certificate under the same name in the same space is a retry (the agent lost
    our answer); any other reuse of the name or the certificate is a conflict.
    """
    uri = await listening_uri(registration.listening_url, registration.mode, outbound)
    certificate = parse_client_certificate(registration.certificate_pem)
    existing = await repos.machines.find_by_thumbprint(certificate.thumbprint)
    if existing is not None:
        if existing.space_id == space_id and existing.name_key == registration.name.lower():
            return Registered(existing, created=False)
        raise Conflict(
            f"this certificate (thumbprint {certificate.thumbprint}) is already registered "
            "as another machine; deregister it first or use a new certificate"
        )
    if await repos.machines.find_by_name(space_id, registration.name) is not None:
        raise Conflict(f"a machine named {registration.name!r} already exists in this space")
    environment_ids: list[uuid.UUID] = []
    pool_ids: list[uuid.UUID] = []
    if registration.kind == WORKER:
        if registration.environments:
            raise _invalid("environments", "a worker belongs to worker pools, not environments")
        if not await directory.space_exists(space_id):
            raise NotFound(f"space {space_id} was not found")
        pool_ids = await resolve_pools(repos, space_id, registration.worker_pools)
        if not pool_ids:
            pool_ids = [(await default_pool(repos, space_id)).id]
    else:
        if not registration.environments:
            raise _invalid("environments", "a deployment target needs at least one environment")
        environment_ids = await resolve_environments(directory, space_id, registration.environments)
    machine = await repos.machines.insert(
        Machine(
            space_id=space_id,
            name=registration.name,
            thumbprint=certificate.thumbprint,
            certificate_pem=certificate.pem,
            mode=registration.mode,
            uri=uri,
            kind=registration.kind,
            environment_ids=[str(id) for id in environment_ids],
            worker_pool_ids=[str(id) for id in pool_ids],
            roles=_unique(registration.roles) if registration.kind == TARGET else [],
        )
    )
    publish.target_registered(_session(repos), machine)
    return Registered(machine, created=True)


async def resolve_environments(
    directory: EnvironmentDirectory, space_id: uuid.UUID, refs: Sequence[str]
) -> list[uuid.UUID]:
    """Each name or id to its environment id, in order, without duplicates; all unknowns at once."""
    if not await directory.space_exists(space_id):
        raise NotFound(f"space {space_id} was not found")
    resolved: list[uuid.UUID] = []
    unknown: list[str] = []
    for ref in _unique(refs):
        environment_id = await directory.find_environment(space_id, ref)
        if environment_id is None:
            unknown.append(ref)
        elif environment_id not in resolved:
            resolved.append(environment_id)
    if unknown:
        names = ", ".join(repr(ref) for ref in unknown)
        raise Invalid(
            f"unknown environment(s) in this space: {names}",
            errors=[
                {"field": "body.environments", "message": f"unknown environment {ref!r}"}
                for ref in unknown
            ],
        )
    return resolved


async def get_machine(
    repos: Repositories, space_id: uuid.UUID, machine_id: uuid.UUID, *, kind: str = TARGET
) -> Machine:
    machine = await repos.machines.find_in_space(space_id, machine_id, kind=kind)
    if machine is None:
        noun = "worker" if kind == WORKER else "machine"
        raise NotFound(f"{noun} {machine_id} was not found in this space")
    return machine


async def find_machines(
    repos: Repositories,
    space_id: uuid.UUID,
    *,
    environment_id: uuid.UUID | None = None,
    roles: Sequence[str] = (),
) -> Sequence[Machine]:
    """The targets of a step: in the environment, with ANY of the roles (all if none given)."""
    return await repos.machines.search(
        space_id, environment_id=environment_id, roles=_unique(roles)
    )


async def find_workers(
    repos: Repositories, space_id: uuid.UUID, *, worker_pool_id: uuid.UUID | None = None
) -> Sequence[Machine]:
    return await repos.machines.workers(space_id, worker_pool_id=worker_pool_id)


async def change_machine(
    repos: Repositories,
    space_id: uuid.UUID,
    machine_id: uuid.UUID,
    changes: MachineChanges,
    *,
    kind: str = TARGET,
) -> Machine:
    machine = await get_machine(repos, space_id, machine_id, kind=kind)
    if changes.is_disabled is not None:
        machine.is_disabled = changes.is_disabled
    if changes.machine_policy_id is not None:
        policy = await repos.machine_policies.find_in_space(space_id, changes.machine_policy_id)
        if policy is None:
            raise _invalid("machine_policy_id", "unknown machine policy in this space")
        machine.machine_policy_id = policy.id
        await repos.machines.schedule_health_check(machine.id, None)
    if changes.roles is not None and machine.kind == TARGET:
        machine.roles = _unique(changes.roles)
    await repos.session.flush()
    return machine


async def delete_machine(
    repos: Repositories, space_id: uuid.UUID, machine_id: uuid.UUID, *, kind: str = TARGET
) -> Machine:
    """Forget the machine: its certificate no longer opens a connection (on any replica)."""
    machine = await get_machine(repos, space_id, machine_id, kind=kind)
    await repos.machines.remove(machine)
    publish.target_deleted(_session(repos), machine)
    return machine


# -- pending registrations -------------------------------------------------------------------


@dataclass(frozen=True)
class Introduction:
    """What a refused agent says about itself when it asks to be approved."""

    name: str
    certificate_pem: str
    kind: str = TARGET
    mode: str = "polling"
    listening_url: str | None = None
    remote_address: str | None = None


@dataclass(frozen=True)
class Approval:
    name: str | None = None
    environments: Sequence[str] = ()
    roles: Sequence[str] = ()
    worker_pools: Sequence[str] = ()


async def record_pending(
    repos: Repositories,
    space_id: uuid.UUID,
    introduction: Introduction,
    *,
    now: datetime,
    keep: int,
    outbound: OutboundPolicy,
) -> PendingRegistration | None:
    """Remember a refused agent for approval; None when its certificate is already trusted.

    Unauthenticated by nature, so it is bounded: one row per certificate, `keep` per space.
    """
    uri = await listening_uri(introduction.listening_url, introduction.mode, outbound)
    if introduction.kind not in KINDS:
        raise _invalid("kind", f"kind must be one of {', '.join(KINDS)}")
    certificate = parse_client_certificate(introduction.certificate_pem)
    if await repos.machines.find_by_thumbprint(certificate.thumbprint) is not None:
        return None
    pending = await repos.pending.upsert(
        {
            "space_id": space_id,
            "thumbprint": certificate.thumbprint,
            "certificate_pem": certificate.pem,
            "name": introduction.name,
            "kind": introduction.kind,
            "mode": introduction.mode,
            "uri": uri,
            "remote_address": introduction.remote_address,
        },
        seen_at=now,
    )
    await repos.pending.prune(space_id, keep)
    return pending


async def list_pending(repos: Repositories, space_id: uuid.UUID) -> Sequence[PendingRegistration]:
    return await repos.pending.in_space(space_id)


async def get_pending(
    repos: Repositories, space_id: uuid.UUID, pending_id: uuid.UUID
) -> PendingRegistration:
    pending = await repos.pending.find_in_space(space_id, pending_id)
    if pending is None:
        raise NotFound(f"pending registration {pending_id} was not found in this space")
    return pending


async def approve_pending(
    repos: Repositories,
    directory: EnvironmentDirectory,
    space_id: uuid.UUID,
    pending_id: uuid.UUID,
    approval: Approval,
    *,
    outbound: OutboundPolicy,
) -> Machine:
    """Turn a pending registration into a machine (the operator supplies where it belongs)."""
    pending = await get_pending(repos, space_id, pending_id)
    registered = await register_machine(
        repos,
        directory,
        space_id,
        Registration(
            name=approval.name or pending.name,
            certificate_pem=pending.certificate_pem,
            environments=approval.environments,
            roles=approval.roles,
            mode=pending.mode,
            listening_url=pending.uri,
            worker_pools=approval.worker_pools,
            kind=pending.kind,
        ),
        outbound=outbound,
    )
    await repos.pending.remove(pending)
    return registered.machine


async def reject_pending(repos: Repositories, space_id: uuid.UUID, pending_id: uuid.UUID) -> None:
    await repos.pending.remove(await get_pending(repos, space_id, pending_id))


def _session(repos: Repositories) -> AsyncSession:
    return repos.session


def _unique(values: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(value.strip(), None)
    return [value for value in seen if value]
