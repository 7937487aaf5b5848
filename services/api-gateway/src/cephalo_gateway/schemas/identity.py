from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class WriteModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class LoginRequest(WriteModel):
    username: Annotated[str, StringConstraints(max_length=200)]
    password: Annotated[str, StringConstraints(max_length=1024)]


class User(ReadModel):
    id: uuid.UUID
    username: str
    display_name: str
    is_service_account: bool
    is_active: bool
    created_at: datetime


class LoginResponse(BaseModel):
    user: User
    csrf_token: str = Field(
        description="Send it back in `X-Cephalo-Csrf-Token` on every state-changing request "
        "made with the session cookie (it is also in the `cephalo_csrf` cookie)."
    )
    expires_at: datetime


class UserCreate(WriteModel):
    username: Name
    display_name: Name | None = None
    password: str | None = Field(None, max_length=1024, description="Not for service accounts.")
    is_service_account: bool = False


class UserUpdate(WriteModel):
    display_name: Name | None = None
    is_active: bool | None = Field(None, description="False disables sign-in and every key.")
    password: str | None = Field(None, max_length=1024)


class ApiKeyCreate(WriteModel):
    purpose: Name
    expires_at: AwareDatetime | None = Field(
        None, description="Defaults to the server's default expiry (180 days)."
    )
    never_expires: bool = False


class ApiKey(ReadModel):
    id: uuid.UUID
    user_id: uuid.UUID
    purpose: str
    display: str = Field(description="The key's first characters, to tell keys apart.")
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKey):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")


class RoleAssignmentCreate(WriteModel):
    role: Name
    space_id: uuid.UUID | None = Field(None, description="None: every space (or the team's).")
    project_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    project_group_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    environment_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)


class RoleAssignment(ReadModel):
    id: uuid.UUID
    team_id: uuid.UUID
    role: str
    space_id: uuid.UUID | None
    project_ids: list[uuid.UUID]
    project_group_ids: list[uuid.UUID]
    environment_ids: list[uuid.UUID]


class TeamCreate(WriteModel):
    name: Name
    description: str = Field("", max_length=10_000)
    space_id: uuid.UUID | None = Field(None, description="None: the team spans every space.")
    member_user_ids: list[uuid.UUID] = Field(default_factory=list, max_length=10_000)


class TeamUpdate(WriteModel):
    name: Name | None = None
    description: str | None = Field(None, max_length=10_000)
    member_user_ids: list[uuid.UUID] | None = Field(None, max_length=10_000)


class Team(ReadModel):
    id: uuid.UUID
    name: str
    description: str
    space_id: uuid.UUID | None
    is_builtin: bool
    member_user_ids: list[uuid.UUID]
    role_assignments: list[RoleAssignment]


class Role(BaseModel):
    name: str
    title: str
    description: str
    is_system: bool
    permissions: list[str]


class Grant(BaseModel):
    role: str
    space_id: uuid.UUID | None
    project_ids: list[uuid.UUID]
    project_group_ids: list[uuid.UUID]
    environment_ids: list[uuid.UUID]
    permissions: list[str]


class MyPermissions(BaseModel):
    """What the caller may do: every grant, and (for the scope asked) the permissions."""

    user_id: uuid.UUID | None
    username: str
    is_administrator: bool
    grants: list[Grant]
    scope: dict[str, uuid.UUID | None]
    permissions: list[str] = Field(description="Allowed on an object in `scope`.")
