from __future__ import annotations

from pydantic import BaseModel, Field


class ApiRoot(BaseModel):
    """Where a client starts: what this server is and where everything lives."""

    name: str
    version: str
    links: dict[str, str] = Field(
        description="Relative URLs by name; `{space}` takes a space's id or slug."
    )
