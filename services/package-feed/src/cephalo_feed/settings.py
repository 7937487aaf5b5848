"""package-feed settings: env vars `CEPHALO_FEED_…` (nested with `__`, e.g.
`CEPHALO_FEED_S3__BUCKET`, `CEPHALO_FEED_LIMITS__MAX_UPLOAD_BYTES`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator

from cephalo_common.settings import ServiceSettings, service_config

MIB = 1024 * 1024
GIB = 1024 * MIB
DEV_DOWNLOAD_SECRET = "cephalo-dev-download-secret"  # noqa: S105  # pragma: allowlist secret - the documented dev default


class S3Settings(BaseModel):
    """Where blobs go when `storage_backend` is `s3` (any S3-compatible endpoint)."""

    bucket: str = Field("", description="Bucket holding the blobs (must exist).")
    prefix: str = Field("packages/", description="Key prefix inside the bucket.")
    endpoint_url: str | None = Field(None, description="e.g. http://seaweedfs:8333; AWS if unset.")
    region: str = "us-east-1"
    access_key_id: SecretStr | None = Field(None, description="Unset: the AWS default chain.")
    secret_access_key: SecretStr | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "path"
    multipart_threshold_bytes: int = Field(
        16 * MIB, ge=5 * MIB, description="Blobs at least this big are sent in parts."
    )
    part_size_bytes: int = Field(
        8 * MIB, ge=5 * MIB, description="Size of each part (bounds memory per upload)."
    )
    connect_timeout_seconds: float = Field(5.0, gt=0)
    read_timeout_seconds: float = Field(60.0, gt=0)


class UploadLimits(BaseModel):
    """What a push may be; anything beyond is refused (413, 408 or 422) and left nowhere."""

    max_upload_bytes: int = Field(
        2 * GIB, ge=1, description="Largest request body; 413 as soon as it is known to be over."
    )
    max_entries: int = Field(20_000, ge=1, description="Most files and folders in an archive.")
    max_entry_bytes: int = Field(4 * GIB, ge=1, description="Largest uncompressed archive entry.")
    max_total_uncompressed_bytes: int = Field(
        8 * GIB, ge=1, description="Largest uncompressed archive content."
    )
    max_compression_ratio: float = Field(
        200.0, gt=1, description="Uncompressed / compressed, per entry and for the whole archive."
    )
    ratio_min_bytes: int = Field(
        MIB, ge=0, description="Ratios are only judged for content at least this big."
    )
    idle_timeout_seconds: float = Field(
        30.0, gt=0, description="A client that sends nothing for this long is cut off (408)."
    )
    max_upload_seconds: float = Field(
        3600.0, gt=0, description="A whole upload must arrive within this (408 otherwise)."
    )
    max_release_notes_bytes: int = Field(256 * 1024, ge=0)
    reject_drain_bytes: int = Field(
        MIB,
        ge=0,
        description="After refusing an upload, read at most this much more of it so the client "
        "can see the answer, then close.",
    )


class RetentionSettings(BaseModel):
    days: int | None = Field(
        None,
        ge=1,
        description="Delete package versions older than this that no release uses; unset keeps "
        "everything (Octopus's built-in feed default when enabled is 30).",
    )
    interval_seconds: float = Field(4 * 3600.0, gt=0, description="How often retention runs.")
    batch_size: int = Field(100, ge=1, description="Versions examined per transaction.")
    blob_grace_seconds: float = Field(
        3600.0,
        ge=0,
        description="An unreferenced blob younger than this is kept (a push may still need it).",
    )


class FeedSettings(ServiceSettings):
    model_config = service_config("feed")

    port: int = Field(8083, ge=0, le=65535)
    storage_dir: Path = Field(
        Path(".cephalo/packages"),
        description="Blobs on the filesystem backend, and uploads in progress (`.uploads/`) "
        "for either backend; relative to the working directory.",
    )
    storage_backend: Literal["filesystem", "s3"] = "filesystem"
    s3: S3Settings = Field(default_factory=S3Settings)
    limits: UploadLimits = Field(default_factory=UploadLimits)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    release_service_url: str = Field(
        "http://127.0.0.1:8081",
        description="release-service's internal base URL, asked which versions releases use.",
    )
    release_service_timeout_seconds: float = Field(5.0, gt=0)
    download_url_secret: SecretStr = Field(
        SecretStr(DEV_DOWNLOAD_SECRET),
        description="HMAC key of signed download URLs; set your own outside development.",
    )
    download_url_ttl_seconds: int = Field(
        300, ge=1, le=7 * 24 * 3600, description="Default lifetime of a signed download URL."
    )
    public_base_url: str | None = Field(
        None, description="Prefix for signed download URLs (e.g. https://cephalo.example.com)."
    )

    @property
    def upload_dir(self) -> Path:
        return self.storage_dir / ".uploads"

    @model_validator(mode="after")
    def _s3_needs_a_bucket(self) -> FeedSettings:
        if self.storage_backend == "s3" and not self.s3.bucket:
            raise ValueError("storage_backend is s3 but s3.bucket is not set")
        return self
