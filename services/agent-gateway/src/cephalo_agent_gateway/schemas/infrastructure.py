"""Worker pools, machine policies and script runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Literal

from pydantic import Field

from cephalo_agent_gateway.schemas.common import Name, ReadModel, WriteModel


class WorkerPoolCreate(WriteModel):
    name: Name
    description: str = Field("", max_length=2000)
    is_default: bool = False


class WorkerPool(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    description: str
    is_default: bool
    created_at: datetime


class MachinePolicyWrite(WriteModel):
    name: Name
    description: str = Field("", max_length=2000)
    health_check_interval_seconds: int = Field(3600, ge=1, le=7 * 24 * 3600)
    health_check_type: Literal["OnlyConnectivity", "RunScript"] = "OnlyConnectivity"
    health_check_script: str | None = Field(None, max_length=64 * 1024)
    health_check_syntax: Literal["bash", "sh", "python"] = "bash"
    health_check_timeout_seconds: int = Field(60, ge=1, le=300)
    health_check_schedule: Literal["Interval", "Cron"] = "Interval"
    health_check_cron: str | None = Field(
        None, max_length=200, description="5 fields, or 6 with seconds first; for Cron."
    )
    health_check_cron_timezone: str = Field("UTC", max_length=64, description="IANA time zone.")


class MachinePolicy(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    description: str
    is_default: bool
    health_check_interval_seconds: int
    health_check_type: str
    health_check_script: str | None
    health_check_syntax: str
    health_check_timeout_seconds: int
    health_check_schedule: str
    health_check_cron: str | None
    health_check_cron_timezone: str
    created_at: datetime


class ScriptRun(ReadModel):
    ticket: str
    space_id: uuid.UUID
    task_id: str
    step_run_id: str
    machine_id: uuid.UUID
    state: str
    outcome: str | None
    exit_code: int | None
    error: str | None
    last_log_sequence: int
    cancel_requested_at: datetime | None
    driver: str | None
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
