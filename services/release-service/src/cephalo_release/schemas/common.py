"""Pieces shared by the API schemas of this service."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,199}$")]
Description = Annotated[str, Field(max_length=10_000)]
ExpectedVersion = Annotated[
    int | None,
    Field(
        None,
        ge=1,
        le=2_147_483_647,
        description="The `version` you read (or send `If-Match`); a stale one is a 409.",
    ),
]

T = TypeVar("T")


class WriteModel(BaseModel):
    """Request bodies: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ReadModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class PageLinks(BaseModel):
    self: str
    next: str | None = None
    prev: str | None = None


class Page(BaseModel, Generic[T]):
    """Every list endpoint answers with this envelope."""

    items: list[T]
    total: int
    skip: int
    take: int
    links: PageLinks
