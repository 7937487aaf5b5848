from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, computed_field


class PackageVersion(BaseModel):
    """One pushed version of a package (where its bytes are stored stays internal)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    space_id: uuid.UUID
    package_id: str
    version: str
    extension: str
    size_bytes: int
    sha256: str
    published_at: datetime
    created_at: datetime

    @computed_field  # type: ignore[prop-decorator]
    @property
    def filename(self) -> str:
        return f"{self.package_id}.{self.version}{self.extension}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def content_path(self) -> str:
        return (
            f"/api/v1/spaces/{self.space_id}/packages/{self.package_id}/versions/"
            f"{self.version}/content"
        )


class PackageVersionDetail(PackageVersion):
    release_notes: str


class PackageSummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    package_id: str
    latest_version: str
    latest_published_at: datetime
    version_count: int


class DownloadUrlRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int | None = Field(
        None, ge=1, le=7 * 24 * 3600, description="Lifetime; the feed's default when unset."
    )


class DownloadUrl(BaseModel):
    url: str
    path: str
    expires_at: datetime
