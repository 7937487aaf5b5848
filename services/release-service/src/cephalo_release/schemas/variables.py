"""API models of variable sets, release variable snapshots and the preview."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field, StringConstraints, model_validator

from cephalo_common.variables import ScopeField
from cephalo_release.schemas.common import Description, ExpectedVersion, Name, WriteModel

VariableType = Literal["Text", "Sensitive", "Certificate", "Account", "WorkerPool"]
ScopeId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MAX_VALUE_CHARS = 2 * 1024 * 1024
NoNul = Query(max_length=200, pattern=r"^[^\x00]*$")


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


class VariablesWrite(WriteModel):
    """PostgreSQL text cannot hold NUL: refused as input rather than failing at the database."""

    @model_validator(mode="before")
    @classmethod
    def _no_nul(cls, data: object) -> object:
        if _has_nul(data):
            raise ValueError("text cannot contain NUL characters (\\u0000)")
        return data


class Prompt(WriteModel):
    """Asked at deployment time; the variable's own value is the default answer."""

    label: str = Field("", max_length=200)
    description: Description = ""
    required: bool = False


class VariableIn(WriteModel):
    id: str | None = Field(
        None, max_length=100, description="The id you read, to keep a variable (and its secret)."
    )
    name: str = Field(min_length=1, max_length=1000)
    type: VariableType = "Text"
    value: str | None = Field(
        None,
        max_length=MAX_VALUE_CHARS,
        description="Text is a template; a Sensitive value is write-only (None keeps the "
        "stored one); references (Certificate, Account, WorkerPool) are ids.",
    )
    description: Description = ""
    scope: dict[ScopeField, list[ScopeId]] = Field(default_factory=dict)
    prompt: Prompt | None = None
    is_sensitive: bool | None = Field(None, description="Read-only (from `type`); ignored.")
    has_value: bool | None = Field(None, description="Read-only; ignored.")


class VariableOut(BaseModel):
    id: str
    name: str
    type: VariableType
    value: str | None = Field(description="Never a sensitive value: None for those.")
    is_sensitive: bool
    has_value: bool
    description: str
    scope: dict[str, list[str]]
    prompt: Prompt | None


class LibrarySetRef(BaseModel):
    id: uuid.UUID
    name: str


class ProjectVariables(BaseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    space_id: uuid.UUID
    version: int
    variables: list[VariableOut]
    library_variable_sets: list[LibrarySetRef]


class ProjectVariablesUpdate(VariablesWrite):
    version: ExpectedVersion = None
    variables: list[VariableIn] = Field(default_factory=list, max_length=5000)
    library_variable_sets: list[Reference] = Field(
        default_factory=list,
        max_length=100,
        description="Included library sets (id, slug or name), earlier ones win ties.",
    )


class LibraryVariableSetCreate(VariablesWrite):
    name: Name
    description: Description = ""
    variables: list[VariableIn] = Field(default_factory=list, max_length=5000)


class LibraryVariableSetUpdate(LibraryVariableSetCreate):
    version: ExpectedVersion = None


class LibraryVariableSet(BaseModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    slug: str
    description: str
    version: int
    variables: list[VariableOut]
    created_at: datetime


class SnapshotVariable(VariableOut):
    source: dict[str, Any]
    declaration_index: int


class ReleaseVariables(BaseModel):
    release_id: uuid.UUID
    taken_at: str | None
    project_variables_version: int | None
    library_sets: list[dict[str, Any]]
    variables: list[SnapshotVariable]


class PreviewCandidate(BaseModel):
    id: str | None
    value: str
    is_sensitive: bool
    type: str
    scope: dict[str, list[str]]
    source: dict[str, Any]
    declaration_index: int
    outcome: Literal["won", "lost", "rejected"]
    levels: list[int] = Field(description="Matched specificity levels (1 step … 11 unscoped).")
    rule: str | None
    mismatch: str | None
    reason: str


class PreviewVariable(BaseModel):
    name: str
    value: str | None
    evaluated: str | None = Field(description="The value with references resolved (masked).")
    is_sensitive: bool
    rule: str = Field(description="The rule that decided between the winner and the runner-up.")
    explanation: str
    tie: bool
    winner: PreviewCandidate | None
    candidates: list[PreviewCandidate]


class VariablePreview(BaseModel):
    context: dict[str, Any]
    variables: list[PreviewVariable]
    warnings: list[str]
