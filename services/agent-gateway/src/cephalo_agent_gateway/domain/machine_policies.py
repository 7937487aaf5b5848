"""Machine policies: how often and how machines are health-checked (after Octopus).

Every space has a default policy (hourly, connectivity only), created on first use. A
machine without a policy follows its space's default. A policy checks on an interval or on
a cron schedule (`health_schedule`); changing it reschedules its machines' next check.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from cephalo_agent_gateway.db.models import Machine, MachinePolicy
from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_agent_gateway.domain.health_schedule import (
    HealthCheckSchedule,
    Schedule,
    next_check_at,
    validate,
)
from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_common.ids import utc_now

DEFAULT_POLICY_NAME = "Default Machine Policy"


class HealthCheckType(StrEnum):
    ONLY_CONNECTIVITY = "OnlyConnectivity"
    RUN_SCRIPT = "RunScript"


@dataclass(frozen=True)
class PolicyFields:
    name: str
    description: str = ""
    health_check_interval_seconds: int = 3600
    health_check_type: HealthCheckType = HealthCheckType.ONLY_CONNECTIVITY
    health_check_script: str | None = None
    health_check_syntax: str = "bash"
    health_check_timeout_seconds: int = 60
    health_check_schedule: HealthCheckSchedule = HealthCheckSchedule.INTERVAL
    health_check_cron: str | None = None
    health_check_cron_timezone: str = "UTC"

    @property
    def schedule(self) -> Schedule:
        return Schedule(
            self.health_check_schedule,
            self.health_check_interval_seconds,
            self.health_check_cron,
            self.health_check_cron_timezone,
        )


def schedule_of(policy: MachinePolicy) -> Schedule:
    return Schedule(
        HealthCheckSchedule(policy.health_check_schedule),
        policy.health_check_interval_seconds,
        policy.health_check_cron,
        policy.health_check_cron_timezone,
    )


def _check(fields: PolicyFields) -> None:
    validate(fields.schedule)
    if fields.health_check_type is HealthCheckType.RUN_SCRIPT and not fields.health_check_script:
        raise Invalid(
            "a RunScript policy needs a health_check_script",
            errors=[{"field": "body.health_check_script", "message": "required for RunScript"}],
        )


async def default_policy(repos: Repositories, space_id: uuid.UUID) -> MachinePolicy:
    found = await repos.machine_policies.find_default(space_id)
    if found is not None:
        return found
    return await repos.machine_policies.ensure_default(
        space_id,
        {
            "name": DEFAULT_POLICY_NAME,
            "description": "Hourly connectivity checks.",
            "health_check_interval_seconds": 3600,
            "health_check_type": HealthCheckType.ONLY_CONNECTIVITY.value,
            "health_check_syntax": "bash",
            "health_check_timeout_seconds": 60,
        },
    )


async def policy_for(repos: Repositories, machine: Machine) -> MachinePolicy:
    if machine.machine_policy_id is not None:
        policy = await repos.machine_policies.find_in_space(
            machine.space_id, machine.machine_policy_id
        )
        if policy is not None:
            return policy
    return await default_policy(repos, machine.space_id)


async def list_policies(repos: Repositories, space_id: uuid.UUID) -> Sequence[MachinePolicy]:
    await default_policy(repos, space_id)
    return await repos.machine_policies.in_space(space_id)


async def get_policy(
    repos: Repositories, space_id: uuid.UUID, policy_id: uuid.UUID
) -> MachinePolicy:
    policy = await repos.machine_policies.find_in_space(space_id, policy_id)
    if policy is None:
        raise NotFound(f"machine policy {policy_id} was not found in this space")
    return policy


async def create_policy(
    repos: Repositories, space_id: uuid.UUID, fields: PolicyFields
) -> MachinePolicy:
    _check(fields)
    await default_policy(repos, space_id)
    if await repos.machine_policies.find_by_name(space_id, fields.name) is not None:
        raise Conflict(f"a machine policy named {fields.name!r} already exists in this space")
    return await repos.machine_policies.insert(
        MachinePolicy(space_id=space_id, is_default=False, **_columns(fields))
    )


async def update_policy(
    repos: Repositories, space_id: uuid.UUID, policy_id: uuid.UUID, fields: PolicyFields
) -> MachinePolicy:
    _check(fields)
    policy = await get_policy(repos, space_id, policy_id)
    for column, value in _columns(fields).items():
        setattr(policy, column, value)
    saved = await repos.machine_policies.save(policy)
    await repos.machines.reschedule_health_checks(
        saved.space_id,
        saved.id,
        include_unassigned=saved.is_default,
        at=next_check_at(fields.schedule, utc_now()),
    )
    return saved


async def delete_policy(repos: Repositories, space_id: uuid.UUID, policy_id: uuid.UUID) -> None:
    policy = await get_policy(repos, space_id, policy_id)
    if policy.is_default:
        raise Conflict("the default machine policy cannot be deleted")
    machines = await repos.machines.count_with_policy(policy.id)
    if machines:
        raise Conflict(f"machine policy {policy.name!r} is used by {machines} machine(s)")
    await repos.machine_policies.remove(policy)


def _columns(fields: PolicyFields) -> dict[str, object]:
    return {
        "name": fields.name,
        "description": fields.description,
        "health_check_interval_seconds": fields.health_check_interval_seconds,
        "health_check_type": fields.health_check_type.value,
        "health_check_script": fields.health_check_script,
        "health_check_syntax": fields.health_check_syntax,
        "health_check_timeout_seconds": fields.health_check_timeout_seconds,
        "health_check_schedule": fields.health_check_schedule.value,
        "health_check_cron": fields.health_check_cron,
        "health_check_cron_timezone": fields.health_check_cron_timezone,
    }
