"""What the lifespan holds for this service (`runtime.extras["feed"]`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_common.db.session import unit_of_work
from cephalo_feed.db.repositories import Repositories
from cephalo_feed.domain.archives import ArchiveLimits
from cephalo_feed.domain.references import ReleaseReferences
from cephalo_feed.settings import FeedSettings
from cephalo_feed.storage import BlobStore

FEED_EXTRA = "feed"


@dataclass
class Feed:
    settings: FeedSettings
    store: BlobStore
    references: ReleaseReferences
    sessionmaker: async_sessionmaker[AsyncSession]

    @asynccontextmanager
    async def unit_of_work(self) -> AsyncIterator[Repositories]:
        async with unit_of_work(self.sessionmaker) as session:
            yield Repositories(session)

    @property
    def archive_limits(self) -> ArchiveLimits:
        limits = self.settings.limits
        return ArchiveLimits(
            max_entries=limits.max_entries,
            max_entry_bytes=limits.max_entry_bytes,
            max_total_uncompressed_bytes=limits.max_total_uncompressed_bytes,
            max_compression_ratio=limits.max_compression_ratio,
            ratio_min_bytes=limits.ratio_min_bytes,
        )
