"""Interruptions as the API reads and answers them."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cephalo_orchestrator.domain.interruptions import Choice
from cephalo_orchestrator.schemas.common import ReadModel


class InterruptionView(ReadModel):
    id: uuid.UUID
    task_id: uuid.UUID
    step_run_id: uuid.UUID | None
    kind: str = Field(description="GuidedFailure or ManualIntervention.")
    title: str
    instructions: str | None
    responsible_team_ids: list[str]
    choices: list[str] = Field(description="What may be submitted.")
    is_pending: bool
    responsible_user: str | None
    result: str | None
    notes: str | None
    submitted_by: str | None
    submitted_at: datetime | None
    created_at: datetime


class InterruptionSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: Choice
    notes: str | None = Field(None, max_length=10_000)
