"""Fetch a package by its (signed) URL into a cache keyed by SHA-256.

The cache file is named after the hash the server vouched for and is only renamed into
place once the downloaded bytes hash to it, so a cached file is always a verified one and a
second deployment of the same bytes skips the download.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from cephalo_agent.steprunner.action import PackageRef
from cephalo_agent.steprunner.errors import StepFailed
from cephalo_agent.steprunner.output import StepOutput

CHUNK = 1024 * 1024
DOWNLOAD_TIMEOUT_SECONDS = 60.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def cached_path(cache: Path, sha256: str) -> Path:
    return cache / f"{sha256}.pkg"


def acquire(package: PackageRef, cache: Path, output: StepOutput) -> Path:
    """The verified package file, from the cache or downloaded into it."""
    label = f"{package.package_id} {package.version}"
    if not package.sha256 or not _SHA256.match(package.sha256):
        raise StepFailed(f"The package {label} has no SHA-256 to verify it against.")
    target = cached_path(cache, package.sha256)
    if target.is_file():
        output.info(f"Package {label} found in the local cache ({package.sha256[:12]}).")
        return target
    if not package.url:
        raise StepFailed(f"The package {label} is not cached here and has no download URL.")
    cache.mkdir(parents=True, exist_ok=True)
    output.info(f"Downloading package {label}.")
    partial, digest, size = _download(package, cache)
    if package.size is not None and size != package.size:
        partial.unlink(missing_ok=True)
        raise StepFailed(f"The package {label} is {size} bytes; the feed said {package.size}.")
    if digest != package.sha256:
        partial.unlink(missing_ok=True)
        raise StepFailed(
            f"The package {label} failed verification: its SHA-256 is {digest}, "
            f"expected {package.sha256}."
        )
    os.replace(partial, target)
    output.info(f"Downloaded {size} bytes, SHA-256 verified.")
    return target


def _download(package: PackageRef, cache: Path) -> tuple[Path, str, int]:
    assert package.url is not None
    descriptor, name = tempfile.mkstemp(dir=cache, suffix=".partial")
    digest = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(descriptor, "wb") as handle, _open(package) as response:
            while chunk := response.read(CHUNK):
                if package.size is not None and size + len(chunk) > package.size:
                    raise StepFailed(
                        f"The package {package.package_id} is larger than the "
                        f"{package.size} bytes the feed announced."
                    )
                digest.update(chunk)
                handle.write(chunk)
                size += len(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), digest.hexdigest(), size


def _open(package: PackageRef):  # type: ignore[no-untyped-def]
    assert package.url is not None
    if not package.url.startswith(("http://", "https://")):
        raise StepFailed(f"The package URL of {package.package_id} is not http(s).")
    try:
        return urllib.request.urlopen(package.url, timeout=DOWNLOAD_TIMEOUT_SECONDS)  # noqa: S310  # nosec B310
    except urllib.error.HTTPError as error:
        raise StepFailed(
            f"Downloading {package.package_id} {package.version} failed: HTTP {error.code}"
        ) from None
    except (urllib.error.URLError, OSError) as error:
        raise StepFailed(f"Downloading {package.package_id} failed: {error}") from None
