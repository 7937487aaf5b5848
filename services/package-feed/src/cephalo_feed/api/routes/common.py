"""Helpers the route modules share."""

from __future__ import annotations

from cephalo_common.logging import get_logger
from cephalo_feed.domain.retention import collect_garbage
from cephalo_feed.runtime import Feed

log = get_logger(__name__)


async def collect_blob_later(feed: Feed, sha256: str) -> None:
    """After the response: remove a blob no version uses any more (the periodic collector
    catches anything this misses)."""
    try:
        await collect_garbage(feed.unit_of_work, feed.store, grace_seconds=0, sha256s=[sha256])
    except Exception:
        log.exception("blob collection after a change failed; the periodic run will retry")
