from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from cephalo_agent_gateway.schemas.common import Name, ReadModel, Role, WriteModel

Mode = Literal["polling", "listening"]
ListeningUrl = Field(
    None,
    max_length=500,
    description="Listening mode: the https://host:port the gateway dials (default port 10933).",
)


class MachineRegister(WriteModel):
    """What an agent sends to become a deployment target."""

    name: Name
    certificate_pem: str = Field(min_length=1, max_length=64 * 1024)
    environments: list[Name] = Field(
        min_length=1, max_length=100, description="Environment names or ids of this space."
    )
    roles: list[Role] = Field(default_factory=list, max_length=100)
    mode: Mode = "polling"
    listening_url: str | None = ListeningUrl


class WorkerRegister(WriteModel):
    """What an agent sends to become a worker (default pool when none is named)."""

    name: Name
    certificate_pem: str = Field(min_length=1, max_length=64 * 1024)
    worker_pools: list[Name] = Field(
        default_factory=list, max_length=100, description="Worker pool names or ids."
    )
    mode: Mode = "polling"
    listening_url: str | None = ListeningUrl


class MachineUpdate(WriteModel):
    is_disabled: bool | None = None
    machine_policy_id: uuid.UUID | None = None
    roles: list[Role] | None = Field(None, max_length=100)

    @model_validator(mode="after")
    def _not_empty(self) -> MachineUpdate:
        if self.is_disabled is None and self.machine_policy_id is None and self.roles is None:
            raise ValueError("give at least one of is_disabled, machine_policy_id, roles")
        return self


class Machine(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    environment_ids: list[uuid.UUID]
    roles: list[str]
    mode: str
    uri: str | None = Field(description="Listening machines: where the gateway dials.")
    thumbprint: str
    is_disabled: bool
    machine_policy_id: uuid.UUID | None
    health_status: str
    health_message: str | None
    health_checked_at: datetime | None
    connected: bool = Field(
        description="Reachable from this replica: a live polling connection here, or a "
        "recent successful call to a listening agent."
    )
    last_seen_at: datetime | None
    created_at: datetime


class Worker(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    worker_pool_ids: list[uuid.UUID]
    mode: str
    uri: str | None
    thumbprint: str
    is_disabled: bool
    machine_policy_id: uuid.UUID | None
    health_status: str
    health_message: str | None
    health_checked_at: datetime | None
    connected: bool
    last_seen_at: datetime | None
    created_at: datetime


class Registered(ReadModel):
    """What the agent must pin and dial, beside the machine or worker it became."""

    server_certificate_pem: str
    server_thumbprint: str
    polling_endpoint: str | None


class MachineRegistered(Machine, Registered):
    pass


class WorkerRegistered(Worker, Registered):
    pass


class ServerCertificate(ReadModel):
    thumbprint: str
    certificate_pem: str


class PendingIntroduce(WriteModel):
    """A refused agent asking to be approved (unauthenticated: nothing here is trusted)."""

    name: Name
    certificate_pem: str = Field(min_length=1, max_length=64 * 1024)
    kind: Literal["target", "worker"] = "target"
    mode: Mode = "polling"
    listening_url: str | None = ListeningUrl


class PendingRegistration(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    thumbprint: str
    kind: str
    mode: str
    uri: str | None
    remote_address: str | None
    attempts: int
    last_seen_at: datetime
    created_at: datetime


class PendingApprove(WriteModel):
    """Where the approved agent belongs: environments (targets) or worker pools (workers)."""

    name: Name | None = None
    environments: list[Name] = Field(default_factory=list, max_length=100)
    roles: list[Role] = Field(default_factory=list, max_length=100)
    worker_pools: list[Name] = Field(default_factory=list, max_length=100)


class HealthCheckResult(ReadModel):
    status: str
    previous_status: str
    message: str
    duration_ms: int
    created_at: datetime | None = None


class MachineHealth(ReadModel):
    machine_id: uuid.UUID
    status: str
    message: str | None
    checked_at: datetime | None
    history: list[HealthCheckResult]


class OfflineDropRegister(WriteModel):
    """A target Cephalo cannot reach: each step becomes a bundle downloaded from its task."""

    name: Name
    environments: list[Name] = Field(
        min_length=1, max_length=100, description="Environment names or ids of this space."
    )
    roles: list[Role] = Field(default_factory=list, max_length=100)
