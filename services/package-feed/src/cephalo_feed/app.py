"""`create_app(settings)`: package-feed as a FastAPI app.

The lifespan (from cephalo_common) owns the engine, the broker and the outbox relay; the
hooks here add what this service holds itself: the blob store (filesystem or S3), the
release-service client, and the maintenance loop (retention, blob collection, stale upload
sweeping), which runs only where workers run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random

import anyio.to_thread
from fastapi import FastAPI

from cephalo_common.http.app import Runtime, ServiceDefinition, create_service_app
from cephalo_common.logging import get_logger
from cephalo_feed.api import routers
from cephalo_feed.clients.release_service import ReleaseServiceReferences
from cephalo_feed.db.models import OutboxEvent
from cephalo_feed.domain.retention import apply_retention, collect_garbage
from cephalo_feed.runtime import FEED_EXTRA, Feed
from cephalo_feed.settings import FeedSettings
from cephalo_feed.storage import BlobStore
from cephalo_feed.storage.filesystem import FilesystemBlobStore
from cephalo_feed.uploads import sweep_stale_uploads

SERVICE_NAME = "package-feed"
MAINTENANCE_TASK = "feed_maintenance"
log = get_logger(__name__)


def _settings(runtime: Runtime) -> FeedSettings:
    settings = runtime.settings
    assert isinstance(settings, FeedSettings)
    return settings


async def _open_store(settings: FeedSettings) -> BlobStore:
    if settings.storage_backend == "s3":
        from cephalo_feed.storage.s3 import S3BlobStore  # botocore is slow to import

        store = S3BlobStore(settings.s3)
        await store.start()
        return store
    return FilesystemBlobStore(settings.storage_dir)


async def open_feed(runtime: Runtime) -> None:
    """Create the folders (a fresh install needs no manual step), the store and clients."""
    settings = _settings(runtime)
    settings.storage_dir.mkdir(parents=True, exist_ok=True)
    settings.upload_dir.mkdir(parents=True, exist_ok=True)
    runtime.extras[FEED_EXTRA] = Feed(
        settings=settings,
        store=await _open_store(settings),
        references=ReleaseServiceReferences(
            settings.release_service_url, timeout_seconds=settings.release_service_timeout_seconds
        ),
        sessionmaker=runtime.sessionmaker,
    )
    if settings.run_workers:
        task = asyncio.create_task(maintain(runtime.extras[FEED_EXTRA]), name="feed-maintenance")
        runtime.extras[MAINTENANCE_TASK] = task
        runtime.tasks.append(task)


async def close_feed(runtime: Runtime) -> None:
    """Stop the maintenance loop before the clients it uses close under it."""
    task = runtime.extras.pop(MAINTENANCE_TASK, None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    feed: Feed | None = runtime.extras.pop(FEED_EXTRA, None)
    if feed is not None:
        await feed.store.aclose()
        references = feed.references
        if isinstance(references, ReleaseServiceReferences):
            await references.aclose()


async def maintain(feed: Feed) -> None:
    """Every `retention.interval_seconds` (jittered, so replicas spread out): sweep uploads
    a killed process left, apply retention when enabled, collect unreferenced blobs."""
    settings = feed.settings
    interval = settings.retention.interval_seconds
    await asyncio.sleep(random.uniform(0, min(interval, 60.0)))  # noqa: S311 - jitter only
    while True:
        try:
            await run_maintenance(feed)
        except Exception:
            log.exception("feed maintenance failed; retrying at the next interval")
        await asyncio.sleep(interval * random.uniform(0.9, 1.1))  # noqa: S311 - jitter only


async def run_maintenance(feed: Feed) -> None:
    settings = feed.settings
    swept = await anyio.to_thread.run_sync(
        sweep_stale_uploads, settings.upload_dir, settings.limits.max_upload_seconds + 60
    )
    if settings.retention.days:
        report = await apply_retention(
            feed.unit_of_work,
            feed.references,
            days=settings.retention.days,
            batch_size=settings.retention.batch_size,
        )
        log.info(
            "retention applied",
            deleted=len(report.deleted),
            kept_in_use=report.kept_in_use,
            kept_unknown=report.kept_unknown,
        )
    collected = await collect_garbage(
        feed.unit_of_work, feed.store, grace_seconds=settings.retention.blob_grace_seconds
    )
    if swept or collected:
        log.info("feed storage tidied", stale_uploads=swept, blobs=collected)


async def storage(runtime: Runtime) -> None:
    """Readiness: blobs can be stored and uploads received (a read-only or missing volume,
    or an unreachable bucket, is not ready)."""
    settings = _settings(runtime)
    feed: Feed | None = runtime.extras.get(FEED_EXTRA)
    if feed is None:
        raise RuntimeError("the feed is not started")
    await feed.store.check()
    if not settings.upload_dir.is_dir() or not os.access(settings.upload_dir, os.W_OK):
        raise RuntimeError(f"{settings.upload_dir} is not a writable directory")


def create_app(settings: FeedSettings | None = None) -> FastAPI:
    return create_service_app(
        ServiceDefinition(
            name=SERVICE_NAME,
            settings=settings or FeedSettings(),
            routers=routers,
            outbox_model=OutboxEvent,
            on_startup=[open_feed],
            on_shutdown=[close_feed],
            readiness_checks=[storage],
            description="The built-in package repository: push, list, download, retention.",
        )
    )
