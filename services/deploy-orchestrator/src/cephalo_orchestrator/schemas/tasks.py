from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import Field, computed_field

from cephalo_orchestrator.domain.task_states import TERMINAL_STATES
from cephalo_orchestrator.schemas.common import ReadModel


class StepRun(ReadModel):
    id: uuid.UUID
    step_index: int
    step_name: str
    machine_id: uuid.UUID | None = Field(description="Null for a step that runs on the server.")
    machine_name: str
    ticket: str
    attempt: int
    state: str
    exit_code: int | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class ServerTask(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    deployment_id: uuid.UUID
    release_id: uuid.UUID
    release_version: str
    project_id: uuid.UUID
    project_name: str
    environment_id: uuid.UUID
    environment_name: str
    state: str
    reason: str | None = Field(description="Why a queued task waits, or why a task failed.")
    current_step: int = Field(description="Index (from 0) of the step running or last run.")
    queued_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    steps: list[dict[str, Any]] = Field(exclude=True)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_completed(self) -> bool:
        return self.state in TERMINAL_STATES

    @computed_field  # type: ignore[prop-decorator]
    @property
    def step_count(self) -> int:
        return len(self.steps)


class ServerTaskDetail(ServerTask):
    step_runs: list[StepRun]

    @classmethod
    def of(cls, task: Any, runs: list[StepRun]) -> ServerTaskDetail:
        fields = {name: getattr(task, name) for name in ServerTask.model_fields}
        return cls.model_validate({**fields, "step_runs": runs})


class TaskLogLine(ReadModel):
    id: int
    time: datetime
    source: str = Field(description="stdout or stderr from the agent; info or error from us.")
    machine: str | None = Field(validation_alias="machine_name")
    step: str | None = Field(validation_alias="step_name")
    sequence: int | None = Field(
        description="The agent's number for its line (from 1, per step run); null for ours."
    )
    text: str


class TaskArtifact(ReadModel):
    id: uuid.UUID
    name: str
    size: int
    sha256: str | None
    step_run_id: uuid.UUID
    step_name: str
    machine_name: str
    created_at: datetime
