"""Packages: immutable versions of a named artifact, each living in exactly one space.

Versions of one package are ordered semantically (SemVer as Octopus orders it), newest
first; channel rules (a NuGet version range and a pre-release tag regex) pick the latest
version a release may use.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cephalo_common.contracts import PackageDeletedV1
from cephalo_common.errors import Conflict, Invalid, NotFound, Unavailable
from cephalo_common.packages import (
    VersionFormat,
    is_valid_version_range,
    matches_channel_rule,
    normalize_version,
    parse_version,
    version_sort_key,
)
from cephalo_common.packages.versions import Version
from cephalo_feed.db.models import Package
from cephalo_feed.db.repositories import Repositories
from cephalo_feed.domain.references import Knowledge, ReleaseReferences
from cephalo_feed.events import publish


async def get_package(repos: Repositories, space_id: uuid.UUID, id: uuid.UUID) -> Package:
    """A package version by id; one from another space is as unknown as a missing one."""
    package = await repos.packages.find_in_space(space_id, id)
    if package is None:
        raise NotFound(f"package {id} was not found in this space")
    return package


def version_key_of(version: str) -> str:
    """The identity of a version as asked for in a URL (`1.0` finds `1.0.0.0`)."""
    try:
        return normalize_version(version)
    except ValueError:
        raise NotFound(f"{version!r} is not a version this feed can hold") from None


async def get_version(
    repos: Repositories, space_id: uuid.UUID, package_id: str, version: str
) -> Package:
    package = await repos.packages.find_version(
        space_id, package_id.lower(), version_key_of(version)
    )
    if package is None:
        raise NotFound(f"package {package_id} {version} was not found in this space")
    return package


async def list_packages(
    repos: Repositories,
    space_id: uuid.UUID,
    *,
    package_id: str | None = None,
    filter: str | None = None,
    limit: int,
    offset: int,
) -> Sequence[Package]:
    """Newest published first, optionally only the versions of one package id."""
    return await repos.packages.list_in_space(
        space_id, package_id=package_id, filter=filter, limit=limit, offset=offset
    )


def _semver(package: Package) -> Version:
    return parse_version(package.version)


def _order_key(package: Package) -> tuple[Any, ...]:
    """Semantic order; rows whose version does not parse (none are written that way) sort
    below every valid one; publication time breaks ties."""
    try:
        return (1, version_sort_key(package.version), package.published_at)
    except ValueError:
        return (0, 0, package.published_at)


def _newest_first(packages: Sequence[Package]) -> list[Package]:
    return sorted(packages, key=_order_key, reverse=True)


@dataclass(frozen=True)
class ChannelRule:
    version_range: str = ""
    prerelease_tag: str = ""
    include_prerelease: bool = True

    def validate(self) -> None:
        if not is_valid_version_range(self.version_range, VersionFormat.SEMVER):
            raise Invalid(
                f"{self.version_range!r} is not a NuGet version range",
                errors=[{"field": "query.version_range", "message": "invalid range"}],
            )

    def admits(self, package: Package) -> bool:
        if not self.include_prerelease and _is_prerelease(package):
            return False
        return matches_channel_rule(
            package.version, version_range=self.version_range, tag=self.prerelease_tag
        )


def _is_prerelease(package: Package) -> bool:
    try:
        return _semver(package).is_prerelease
    except ValueError:
        return False


async def list_versions(
    repos: Repositories,
    space_id: uuid.UUID,
    package_id: str,
    rule: ChannelRule,
    *,
    limit: int,
    offset: int,
) -> list[Package]:
    """The versions of one package the rule admits, newest (semantically) first."""
    rule.validate()
    versions = await repos.packages.versions_of(space_id, package_id.lower())
    if not versions:
        raise NotFound(f"package {package_id} was not found in this space")
    admitted = [package for package in _newest_first(versions) if rule.admits(package)]
    return admitted[offset : offset + limit]


async def latest_version(
    repos: Repositories, space_id: uuid.UUID, package_id: str, rule: ChannelRule
) -> Package:
    """What a channel with this rule would pick for a new release (404 if nothing fits)."""
    found = await list_versions(repos, space_id, package_id, rule, limit=1, offset=0)
    if not found:
        raise NotFound(f"no version of {package_id} matches the version rule")
    return await get_package(repos, space_id, found[0].id)


@dataclass(frozen=True)
class PackageSummary:
    package_id: str
    latest_version: str
    latest_published_at: datetime
    version_count: int


async def search_packages(
    repos: Repositories, space_id: uuid.UUID, *, filter: str | None, limit: int, offset: int
) -> list[PackageSummary]:
    """Package ids in the space (alphabetically) with their newest version."""
    keys = await repos.packages.package_ids(space_id, filter=filter, limit=limit, offset=offset)
    rows = await repos.packages.versions_of_many(space_id, keys)
    by_key: dict[str, list[Package]] = {}
    for row in rows:
        by_key.setdefault(row.package_id_key, []).append(row)
    summaries = []
    for key in keys:
        versions = _newest_first(by_key.get(key, []))
        if not versions:
            continue
        newest = versions[0]
        summaries.append(
            PackageSummary(
                package_id=newest.package_id,
                latest_version=newest.version,
                latest_published_at=newest.published_at,
                version_count=len(versions),
            )
        )
    return summaries


async def delete_version(
    repos: Repositories,
    references: ReleaseReferences,
    package: Package,
    *,
    force: bool,
) -> None:
    """Delete one version (audited by `package.deleted`); a version a release uses, or one
    whose use cannot be checked, needs `force`."""
    await repos.packages.lock_identity(
        package.space_id, package.package_id_key, package.version_key
    )
    if not force:
        found = await references.references(package.space_id, package.package_id)
        name = f"{package.package_id} {package.version}"
        if found.knowledge is Knowledge.UNAVAILABLE:
            raise Unavailable(
                f"cannot check whether a release uses {name} ({found.reason}); retry, or "
                "delete with force=true"
            )
        if found.knowledge is Knowledge.NO_ENDPOINT:
            raise Conflict(
                f"cannot check whether a release uses {name} ({found.reason}); delete with "
                "force=true to delete it anyway"
            )
        if package.version_key in found.version_keys:
            raise Conflict(f"{name} is used by a release; delete with force=true to delete it")
    await remove_version(repos, package, reason="deleted", forced=force)


async def remove_version(
    repos: Repositories, package: Package, *, reason: str, forced: bool = False
) -> None:
    """Delete the row and announce it; the blob is left to the garbage collector."""
    await repos.packages.remove(package)
    publish.package_deleted(
        repos.session,
        str(package.space_id),
        PackageDeletedV1(
            package_version_id=str(package.id),
            package_id=package.package_id,
            version=package.version,
            sha256=package.sha256,
            reason="retention" if reason == "retention" else "deleted",
            forced=forced,
        ),
    )
