"""The packages a step needs, located in the feed before the step is dispatched.

A release pins each package reference to a version; the target needs a signed link to the
bytes and the SHA-256 and size to check them against. `PackageSource` is the question, so
the rules never depend on HTTP. A missing package fails the step on every target with a
message naming it; an unreachable feed is retried like an unreachable agent-gateway.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol

from cephalo_common.contracts import PackageAcquisitionV1, ScriptActionSnapshot

BUILTIN_FEED = "builtin"


class PackagesUnavailable(Exception):
    """The feed could not be asked (down, timed out, 5xx): worth retrying."""


class PackageMissing(Exception):
    """The package cannot be delivered (unknown version, other feed, refused): the step fails."""


class PackageSource(Protocol):
    async def locate(
        self, space_id: uuid.UUID, package: PackageAcquisitionV1
    ) -> PackageAcquisitionV1:
        """The package with its download URL, SHA-256 and size filled in."""
        ...


def requested_packages(action: ScriptActionSnapshot) -> list[PackageAcquisitionV1]:
    """The package versions the release pinned (a reference without a version is skipped:
    release-service refuses to create such a release)."""
    result = []
    for package in action.properties.get("packages") or []:
        if not isinstance(package, dict) or not package.get("version"):
            continue
        result.append(
            PackageAcquisitionV1(
                reference_name=str(package.get("name") or ""),
                package_id=str(package["package_id"]),
                version=str(package["version"]),
                feed_id=str(package.get("feed_id") or BUILTIN_FEED),
            )
        )
    return result


async def locate_all(
    source: PackageSource, space_id: uuid.UUID, packages: Sequence[PackageAcquisitionV1]
) -> list[PackageAcquisitionV1]:
    """Every package located, or `PackageMissing`/`PackagesUnavailable` for the first that
    is not; only the built-in feed can serve targets."""
    located = []
    for package in packages:
        if package.feed_id.lower() != BUILTIN_FEED:
            raise PackageMissing(
                f"Package {package.package_id} {package.version} comes from feed "
                f"{package.feed_id!r}; only the built-in feed can deliver packages to targets"
            )
        located.append(await source.locate(space_id, package))
    return located
