from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from cephalo_release.schemas.common import Name, ReadModel, WriteModel

Role = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class ScriptSyntax(StrEnum):
    BASH = "bash"
    SH = "sh"
    PYTHON = "python"


class ProjectCreate(WriteModel):
    name: Name
    description: str = ""


class Project(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    slug: str
    description: str
    created_at: datetime


class RunScriptStep(WriteModel):
    """The built-in "Run a script" step, run on every target with one of its roles."""

    name: Name
    action_type: str = Field("cephalo.script", pattern=r"^cephalo\.script$")
    target_roles: list[Role] = Field(min_length=1)
    script_body: str = Field(min_length=1, max_length=1_000_000)
    syntax: ScriptSyntax = ScriptSyntax.BASH


class DeploymentProcessUpdate(WriteModel):
    version: int | None = Field(None, description="The version read; a stale one is a 409.")
    steps: list[RunScriptStep]


class DeploymentStep(RunScriptStep):
    id: uuid.UUID


class DeploymentProcess(ReadModel):
    project_id: uuid.UUID
    version: int
    steps: list[DeploymentStep]
