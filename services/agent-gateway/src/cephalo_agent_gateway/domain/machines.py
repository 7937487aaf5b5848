"""Machines (deployment targets): registration, lookup and removal, inside one space."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from cephalo_agent_gateway.db.models import Machine
from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_agent_gateway.domain.certificates import parse_client_certificate
from cephalo_common.errors import Conflict, Invalid, NotFound

SUPPORTED_MODES = ("polling",)


class EnvironmentDirectory(Protocol):
    """Where environments live (release-service); agents name them by name or id."""

    async def space_exists(self, space_id: uuid.UUID) -> bool: ...

    async def find_environment(self, space_id: uuid.UUID, ref: str) -> uuid.UUID | None: ...


@dataclass(frozen=True)
class Registration:
    name: str
    certificate_pem: str
    environments: Sequence[str]
    roles: Sequence[str]
    mode: str = "polling"


@dataclass(frozen=True)
class Registered:
    machine: Machine
    created: bool


async def register_machine(
    repos: Repositories,
    directory: EnvironmentDirectory,
    space_id: uuid.UUID,
    registration: Registration,
) -> Registered:
    """Add a polling machine, or return it unchanged when the same agent registers again.

    The same certificate under the same name in the same space is a retry (the agent lost
    our answer); any other reuse of the name or the certificate is a conflict.
    """
    if registration.mode not in SUPPORTED_MODES:
        raise Invalid(
            f"mode {registration.mode!r} is not supported yet; register with mode 'polling'",
            errors=[{"field": "body.mode", "message": "unsupported mode", "code": "mode"}],
        )
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
    environment_ids = await resolve_environments(directory, space_id, registration.environments)
    machine = await repos.machines.insert(
        Machine(
            space_id=space_id,
            name=registration.name,
            thumbprint=certificate.thumbprint,
            certificate_pem=certificate.pem,
            mode=registration.mode,
            environment_ids=[str(id) for id in environment_ids],
            roles=_unique(registration.roles),
        )
    )
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


async def get_machine(repos: Repositories, space_id: uuid.UUID, machine_id: uuid.UUID) -> Machine:
    machine = await repos.machines.find_in_space(space_id, machine_id)
    if machine is None:
        raise NotFound(f"machine {machine_id} was not found in this space")
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


async def delete_machine(
    repos: Repositories, space_id: uuid.UUID, machine_id: uuid.UUID
) -> Machine:
    """Forget the machine: its certificate no longer opens a connection."""
    machine = await get_machine(repos, space_id, machine_id)
    await repos.machines.remove(machine)
    return machine


def _unique(values: Sequence[str]) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(value.strip(), None)
    return [value for value in seen if value]
