"""Open and close the HTTP clients of other services with the app."""

from __future__ import annotations

from cephalo_common.http.app import Runtime
from cephalo_release.clients.feed import FeedPackageVersions
from cephalo_release.deps import PACKAGE_FEED_EXTRA
from cephalo_release.settings import ReleaseSettings


async def open_clients(runtime: Runtime) -> None:
    settings = runtime.settings
    if isinstance(settings, ReleaseSettings) and settings.feed_url:
        runtime.extras[PACKAGE_FEED_EXTRA] = FeedPackageVersions(
            settings.feed_url, timeout_seconds=settings.feed_timeout_seconds
        )


async def close_clients(runtime: Runtime) -> None:
    feed = runtime.extras.pop(PACKAGE_FEED_EXTRA, None)
    if isinstance(feed, FeedPackageVersions):
        await feed.aclose()
