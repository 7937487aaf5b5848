"""release-service settings: env vars `CEPHALO_RELEASE_…`."""

from __future__ import annotations

from pydantic import Field

from cephalo_common.settings import ServiceSettings, service_config


class ReleaseSettings(ServiceSettings):
    model_config = service_config("release")

    port: int = Field(8081, ge=0, le=65535)
    scheduler_poll_seconds: float = Field(
        5.0, gt=0, le=3600, description="How often scheduled deployments are checked for due."
    )
    feed_url: str | None = Field(
        None,
        description=(
            "package-feed's internal base URL, asked for package versions at release creation; "
            "unset: explicit versions are trusted and none can be chosen."
        ),
    )
    feed_timeout_seconds: float = Field(5.0, gt=0, le=300)
