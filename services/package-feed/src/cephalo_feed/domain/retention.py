"""Retention and blob garbage collection, safe to run on every replica at once.

Retention (Octopus's built-in feed rule): a version older than N days that no release
uses is deleted, with a `package.deleted` event. Rows are claimed with `FOR UPDATE SKIP
LOCKED`, so two replicas never handle the same version; when release-service cannot say
which versions releases use, the package's versions are all kept.

Garbage collection deletes blobs no version references (after a delete, an overwrite or a
crashed push). It holds the blob row's lock while it deletes the bytes, and a push takes
that same lock before it relies on the bytes, so a push never commits a version whose
bytes the collector removed.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cephalo_common.ids import utc_now
from cephalo_common.logging import get_logger
from cephalo_feed.db.models import Package
from cephalo_feed.domain.packages import remove_version
from cephalo_feed.domain.references import ReleaseReferences
from cephalo_feed.domain.units import UnitOfWork
from cephalo_feed.storage import BlobStore

log = get_logger(__name__)


@dataclass
class RetentionReport:
    deleted: list[uuid.UUID] = field(default_factory=list)
    kept_in_use: int = 0
    kept_unknown: int = 0


async def apply_retention(
    unit_of_work: UnitOfWork,
    references: ReleaseReferences,
    *,
    days: int,
    batch_size: int,
    now: datetime | None = None,
) -> RetentionReport:
    """One pass over every expired version, a batch per transaction."""
    cutoff = (now or utc_now()) - timedelta(days=days)
    report = RetentionReport()
    after: tuple[datetime, uuid.UUID] | None = None
    while True:
        async with unit_of_work() as repos:
            batch = await repos.packages.lock_expired(cutoff, after=after, limit=batch_size)
            if not batch:
                return report
            after = (batch[-1].published_at, batch[-1].id)
            for group in _by_package(batch):
                first = group[0]
                found = await references.references(first.space_id, first.package_id)
                if not found.known:
                    report.kept_unknown += len(group)
                    log.info(
                        "retention kept versions it cannot check",
                        package_id=first.package_id,
                        reason=found.reason,
                    )
                    continue
                for package in group:
                    if package.version_key in found.version_keys:
                        report.kept_in_use += 1
                        continue
                    await remove_version(repos, package, reason="retention")
                    report.deleted.append(package.id)


def _by_package(batch: Sequence[Package]) -> list[list[Package]]:
    groups: dict[tuple[uuid.UUID, str], list[Package]] = defaultdict(list)
    for package in batch:
        groups[(package.space_id, package.package_id_key)].append(package)
    return list(groups.values())


async def collect_garbage(
    unit_of_work: UnitOfWork,
    store: BlobStore,
    *,
    grace_seconds: float,
    sha256s: Sequence[str] | None = None,
    batch_size: int = 100,
) -> int:
    """Delete unreferenced blobs untouched for `grace_seconds`; the number deleted."""
    touched_before = utc_now() - timedelta(seconds=grace_seconds)
    deleted = 0
    while True:
        before = deleted
        async with unit_of_work() as repos:
            blobs = await repos.blobs.lock_unreferenced(
                touched_before=touched_before, sha256s=sha256s, limit=batch_size
            )
            for blob in blobs:
                if await repos.packages.references_blob(blob.sha256):
                    continue
                await repos.blobs.remove(blob)
                await store.delete(blob.storage_key)
                deleted += 1
        if len(blobs) < batch_size or deleted == before:
            return deleted
