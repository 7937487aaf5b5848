"""package-feed settings: env vars `CEPHALO_FEED_…`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from cephalo_common.settings import ServiceSettings, service_config


class FeedSettings(ServiceSettings):
    model_config = service_config("feed")

    port: int = Field(8083, ge=0, le=65535)
    storage_dir: Path = Field(
        Path(".cephalo/packages"),
        description="Where package blobs live on the filesystem (relative to the working dir).",
    )
