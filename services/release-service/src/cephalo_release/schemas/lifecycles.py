from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import Field, model_validator

from cephalo_release.schemas.common import (
    Description,
    ExpectedVersion,
    Name,
    ReadModel,
    Slug,
    WriteModel,
)


class RetentionStrategy(StrEnum):
    FOREVER = "Forever"
    COUNT = "Count"


class RetentionUnit(StrEnum):
    ITEMS = "Items"
    DAYS = "Days"


class RetentionPolicy(WriteModel):
    """Keep releases (or files on targets) for ever, or the last N items / N days."""

    strategy: RetentionStrategy = RetentionStrategy.FOREVER
    quantity_to_keep: int = Field(0, ge=0, le=100_000)
    unit: RetentionUnit = RetentionUnit.ITEMS

    @model_validator(mode="after")
    def _count_needs_a_quantity(self) -> RetentionPolicy:
        if self.strategy is RetentionStrategy.COUNT and self.quantity_to_keep < 1:
            raise ValueError("a Count policy keeps at least 1 (use Forever to keep everything)")
        if self.strategy is RetentionStrategy.FOREVER:
            self.quantity_to_keep = 0
        return self


class PhaseWrite(WriteModel):
    id: uuid.UUID | None = None
    name: Name
    automatic_environment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=500)
    optional_environment_ids: list[uuid.UUID] = Field(
        default_factory=list,
        max_length=500,
        description="Manual environments: deployed when someone asks.",
    )
    minimum_environments_before_promotion: int = Field(
        0, ge=0, le=500, description="0 = all environments of the phase must succeed."
    )
    is_optional_phase: bool = False
    release_retention_policy: RetentionPolicy | None = Field(
        None, description="None inherits from the previous phase or the lifecycle."
    )
    target_retention_policy: RetentionPolicy | None = None


class LifecycleCreate(WriteModel):
    name: Name
    slug: Slug | None = None
    description: Description = ""
    release_retention_policy: RetentionPolicy = Field(default_factory=RetentionPolicy)
    target_retention_policy: RetentionPolicy = Field(default_factory=RetentionPolicy)
    phases: list[PhaseWrite] = Field(default_factory=list, max_length=100)


class LifecycleUpdate(LifecycleCreate):
    version: ExpectedVersion = None


class Phase(ReadModel):
    id: uuid.UUID
    name: str
    automatic_environment_ids: list[uuid.UUID]
    optional_environment_ids: list[uuid.UUID]
    minimum_environments_before_promotion: int
    is_optional_phase: bool
    release_retention_policy: RetentionPolicy | None
    target_retention_policy: RetentionPolicy | None
    effective_release_retention_policy: RetentionPolicy
    effective_target_retention_policy: RetentionPolicy


class Lifecycle(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    slug: str
    description: str
    is_default: bool
    release_retention_policy: RetentionPolicy
    target_retention_policy: RetentionPolicy
    phases: list[Phase]
    version: int
    created_at: datetime
    updated_at: datetime


class EnvironmentProgress(ReadModel):
    environment_id: uuid.UUID
    name: str
    automatic: bool
    latest_state: str | None
    can_deploy: bool
    reason: str | None


class PhaseProgress(ReadModel):
    index: int
    id: str
    name: str
    is_optional: bool
    required: int
    succeeded: int
    is_complete: bool
    is_reached: bool
    state: str
    environments: list[EnvironmentProgress]


class Progression(ReadModel):
    release_id: uuid.UUID
    lifecycle_id: uuid.UUID
    lifecycle_name: str
    phases: list[PhaseProgress]
    next_deployments: list[uuid.UUID]
