"""Read models from ORM rows (shared by the machine and worker routes)."""

from __future__ import annotations

from typing import Any

from cephalo_agent_gateway.db import models
from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_agent_gateway.runtime import Gateway
from cephalo_agent_gateway.schemas.machines import (
    HealthCheckResult,
    Machine,
    MachineHealth,
    Worker,
)


def _fields(model: type[Machine] | type[Worker], machine: models.Machine) -> dict[str, Any]:
    return {name: getattr(machine, name) for name in model.model_fields if name != "connected"}


def render_machine(machine: models.Machine, gateway: Gateway) -> Machine:
    return Machine(
        **_fields(Machine, machine), connected=gateway.transport.is_connected(machine.id)
    )


def render_worker(machine: models.Machine, gateway: Gateway) -> Worker:
    return Worker(**_fields(Worker, machine), connected=gateway.transport.is_connected(machine.id))


def registered_extras(machine: models.Machine, gateway: Gateway) -> dict[str, Any]:
    return {
        "server_certificate_pem": gateway.identity.certificate_pem,
        "server_thumbprint": gateway.identity.thumbprint,
        "polling_endpoint": gateway.settings.polling_endpoint
        if machine.mode == "polling"
        else None,
    }


async def health_of(repos: Repositories, machine: models.Machine, limit: int) -> MachineHealth:
    history = await repos.health_checks.history(machine.id, limit)
    return MachineHealth(
        machine_id=machine.id,
        status=machine.health_status,
        message=machine.health_message,
        checked_at=machine.health_checked_at,
        history=[HealthCheckResult.model_validate(check) for check in history],
    )
