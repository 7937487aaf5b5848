from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from cephalo_agent_gateway.schemas.common import Name, ReadModel, Role, WriteModel


class MachineRegister(WriteModel):
    """What an agent sends to become a deployment target."""

    name: Name
    certificate_pem: str = Field(min_length=1, max_length=64 * 1024)
    environments: list[Name] = Field(
        min_length=1, max_length=100, description="Environment names or ids of this space."
    )
    roles: list[Role] = Field(default_factory=list, max_length=100)
    mode: Literal["polling", "listening"] = "polling"


class Machine(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    environment_ids: list[uuid.UUID]
    roles: list[str]
    mode: str
    thumbprint: str
    is_disabled: bool
    health_status: str
    connected: bool = Field(description="A polling connection is live on this replica.")
    last_seen_at: datetime | None
    created_at: datetime


class MachineRegistered(Machine):
    """The machine, plus what the agent must pin and dial."""

    server_certificate_pem: str
    server_thumbprint: str
    polling_endpoint: str | None


class ServerCertificate(ReadModel):
    thumbprint: str
    certificate_pem: str
