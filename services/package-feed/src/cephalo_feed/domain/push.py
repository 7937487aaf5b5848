"""Pushing a package version: an uploaded, inspected file becomes a stored, announced version.

Order matters for "crash anywhere":
1. the blob row is touched in its own committed transaction, so bytes stored from now on
   are known to the garbage collector even if this process dies before step 4;
2. the version's identity is locked (advisory lock) and the overwrite mode applied;
3. the blob row is touched again, which locks it against the collector, and the bytes are
   stored unless the store already has them (identical content is stored once);
4. the row and the `package.pushed` outbox event are written; the request commits both.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cephalo_common.contracts import PackagePushedV1
from cephalo_common.errors import Conflict, Unavailable
from cephalo_common.ids import utc_now
from cephalo_common.packages import PackageFilename, normalize_version
from cephalo_feed.db.models import Package
from cephalo_feed.db.repositories import Repositories
from cephalo_feed.domain.units import UnitOfWork
from cephalo_feed.events import publish
from cephalo_feed.storage import BlobStore, StorageUnavailable, blob_key


class OverwriteMode(StrEnum):
    """Octopus's `OverwriteMode` for pushes to the built-in feed."""

    FAIL_IF_EXISTS = "FailIfExists"
    OVERWRITE_EXISTING = "OverwriteExisting"
    IGNORE_IF_EXISTS = "IgnoreIfExists"


def overwrite_mode_of(mode: OverwriteMode | None, replace: bool | None) -> OverwriteMode:
    """An explicit mode wins; the legacy `replace=true` means OverwriteExisting."""
    if mode is not None:
        return mode
    return OverwriteMode.OVERWRITE_EXISTING if replace else OverwriteMode.FAIL_IF_EXISTS


@dataclass(frozen=True)
class Upload:
    """A complete, inspected upload waiting in a temporary file."""

    space_id: uuid.UUID
    identity: PackageFilename
    path: Path
    size: int
    sha256: str
    release_notes: str = ""


@dataclass(frozen=True)
class PushOutcome:
    package: Package
    stored: bool
    """False when `IgnoreIfExists` kept the version that was already there."""
    replaced_sha256: str | None = None
    """The previous content's hash when a version was overwritten with other bytes."""


async def push_package(
    repos: Repositories,
    store: BlobStore,
    upload: Upload,
    mode: OverwriteMode,
    *,
    unit_of_work: UnitOfWork,
) -> PushOutcome:
    identity = upload.identity
    version_key = normalize_version(identity.version)
    package_id_key = identity.package_id.lower()
    key = blob_key(upload.sha256)
    async with unit_of_work() as registration:
        await registration.blobs.touch(upload.sha256, upload.size, key)

    await repos.packages.lock_identity(upload.space_id, package_id_key, version_key)
    existing = await repos.packages.find_version(upload.space_id, package_id_key, version_key)
    if existing is not None and mode is OverwriteMode.FAIL_IF_EXISTS:
        raise Conflict(
            f"package {existing.package_id} {existing.version} already exists in this space; "
            "push with overwriteMode=OverwriteExisting (or replace=true) to replace it, or "
            "IgnoreIfExists to keep it"
        )
    if existing is not None and mode is OverwriteMode.IGNORE_IF_EXISTS:
        return PushOutcome(existing, stored=False)

    await repos.blobs.touch(upload.sha256, upload.size, key)
    try:
        if not await store.exists(key):
            await store.put_file(key, upload.path, upload.size)
    except StorageUnavailable as error:
        raise Unavailable(f"the package store is unavailable: {error}") from error

    previous = existing.sha256 if existing is not None else None
    package = _write_row(existing, upload, version_key, key)
    if existing is None:
        await repos.packages.add(package)
    else:
        await repos.session.flush()
    publish.package_pushed(
        repos.session,
        str(upload.space_id),
        PackagePushedV1(
            package_version_id=str(package.id),
            package_id=package.package_id,
            version=package.version,
            extension=package.extension,
            size_bytes=package.size_bytes,
            sha256=package.sha256,
            published_at=package.published_at,
            replaced=existing is not None,
        ),
    )
    replaced = previous if previous is not None and previous != upload.sha256 else None
    return PushOutcome(package, stored=True, replaced_sha256=replaced)


def _write_row(
    existing: Package | None, upload: Upload, version_key: str, storage_key: str
) -> Package:
    identity = upload.identity
    package = existing or Package(space_id=upload.space_id)
    package.package_id = identity.package_id
    package.version = identity.version
    package.version_key = version_key
    package.extension = identity.extension
    package.size_bytes = upload.size
    package.sha256 = upload.sha256
    package.storage_key = storage_key
    package.release_notes = upload.release_notes
    package.published_at = utc_now()
    return package
