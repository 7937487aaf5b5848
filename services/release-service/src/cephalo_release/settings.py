"""release-service settings: env vars `CEPHALO_RELEASE_…`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr

from cephalo_common.settings import ServiceSettings, service_config


class ReleaseSettings(ServiceSettings):
    model_config = service_config("release")

    port: int = Field(8081, ge=0, le=65535)
    scheduler_poll_seconds: float = Field(
        5.0, gt=0, le=3600, description="How often scheduled deployments are checked for due."
    )
    master_key: SecretStr | None = Field(
        None,
        description="Base64 of the 32-byte key that encrypts sensitive variables (current key).",
    )
    master_key_file: Path | None = Field(
        None, description="A file holding the base64 current master key (instead of master_key)."
    )
    previous_master_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Older base64 keys (JSON list), still accepted for decryption until "
        "`rotate-keys` has re-encrypted everything with the current key.",
    )
    feed_url: str | None = Field(
        None,
        description=(
            "package-feed's internal base URL, asked for package versions at release creation; "
            "unset: explicit versions are trusted and none can be chosen."
        ),
    )
    feed_timeout_seconds: float = Field(5.0, gt=0, le=300)
