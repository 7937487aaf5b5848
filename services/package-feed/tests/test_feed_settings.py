"""Settings come from `CEPHALO_FEED_…` variables, nested with `__`, and refuse nonsense."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cephalo_feed.settings import FeedSettings


def test_nested_settings_come_from_prefixed_environment_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CEPHALO_FEED_STORAGE_BACKEND", "s3")
    monkeypatch.setenv("CEPHALO_FEED_S3__BUCKET", "packages")
    monkeypatch.setenv("CEPHALO_FEED_S3__ENDPOINT_URL", "http://seaweedfs:8333")
    monkeypatch.setenv("CEPHALO_FEED_LIMITS__MAX_UPLOAD_BYTES", "1048576")
    monkeypatch.setenv("CEPHALO_FEED_RETENTION__DAYS", "30")
    settings = FeedSettings()
    assert (settings.storage_backend, settings.s3.bucket) == ("s3", "packages")
    assert settings.s3.endpoint_url == "http://seaweedfs:8333"
    assert settings.limits.max_upload_bytes == 1_048_576
    assert settings.retention.days == 30
    assert settings.upload_dir == settings.storage_dir / ".uploads"


def test_the_s3_backend_needs_a_bucket() -> None:
    with pytest.raises(ValidationError, match="bucket"):
        FeedSettings(storage_backend="s3")


@pytest.mark.parametrize(
    "limits",
    [{"max_upload_bytes": 0}, {"max_compression_ratio": 1}, {"idle_timeout_seconds": 0}],
)
def test_limits_that_would_refuse_everything_are_invalid(limits: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        FeedSettings(limits=limits)


def test_s3_parts_are_at_least_the_s3_minimum() -> None:
    with pytest.raises(ValidationError):
        FeedSettings(s3={"bucket": "b", "part_size_bytes": 1024})
