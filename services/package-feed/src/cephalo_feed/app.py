"""`create_app(settings)`: package-feed as a FastAPI app."""

from __future__ import annotations

import os

from fastapi import FastAPI

from cephalo_common.http.app import Runtime, ServiceDefinition, create_service_app
from cephalo_feed.api import routers
from cephalo_feed.db.models import OutboxEvent
from cephalo_feed.settings import FeedSettings

SERVICE_NAME = "package-feed"


async def prepare_storage(runtime: Runtime) -> None:
    """Create the blob directory so a fresh install is ready without a manual step."""
    settings = runtime.settings
    assert isinstance(settings, FeedSettings)
    settings.storage_dir.mkdir(parents=True, exist_ok=True)


async def storage(runtime: Runtime) -> None:
    """Readiness: blobs can be written (a read-only or missing volume is not ready)."""
    settings = runtime.settings
    assert isinstance(settings, FeedSettings)
    if not settings.storage_dir.is_dir() or not os.access(settings.storage_dir, os.W_OK):
        raise RuntimeError(f"{settings.storage_dir} is not a writable directory")


def create_app(settings: FeedSettings | None = None) -> FastAPI:
    return create_service_app(
        ServiceDefinition(
            name=SERVICE_NAME,
            settings=settings or FeedSettings(),
            routers=routers,
            outbox_model=OutboxEvent,
            on_startup=[prepare_storage],
            readiness_checks=[storage],
            description="Packages and their versions, per space.",
        )
    )
