"""Package file names: `<PackageId>.<Version><extension>`, split the way Octopus splits them.

Octopus (Calamari's `PackageIdentifier`) cuts the id at the first `.<digit>` that leaves a
valid version behind, so `MyApp.Web.1.2.3.zip` is `MyApp.Web` 1.2.3 and `App.2.Tools.1.0.zip`
is `App.2.Tools` 1.0; digits in ids invite surprises (`App.1.2.3.4.5.zip` is `App.1`
2.3.4.5). Ids here are ASCII letters, digits and `_`, in segments joined by `.` or `-`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_FILENAME_LENGTH = 255
MAX_PACKAGE_ID_LENGTH = 100
MAX_VERSION_LENGTH = 100

ARCHIVE_EXTENSIONS: tuple[str, ...] = (
    ".tar.gz",
    ".tar.bz2",
    ".tar.bz",
    ".tgz",
    ".tbz2",
    ".tbz",
    ".tar",
    ".nupkg",
    ".zip",
    ".jar",
    ".war",
    ".ear",
    ".rar",
)
"""Longest first, so `.tar.gz` wins over `.gz`-less `.tar`. Java `.rar` is a zip archive."""

ZIP_EXTENSIONS = frozenset({".zip", ".nupkg", ".jar", ".war", ".ear", ".rar"})
TAR_EXTENSIONS = frozenset({".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.bz", ".tbz2", ".tbz"})

_PACKAGE_ID = re.compile(r"[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*")
_FILENAME_VERSION = re.compile(
    r"[0-9]+(?:\.[0-9]+){0,3}"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
    r"(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?"
)


@dataclass(frozen=True)
class PackageFilename:
    package_id: str
    version: str
    extension: str
    """Lowercase, with its leading dot: `.zip`, `.tar.gz`."""

    @property
    def filename(self) -> str:
        return f"{self.package_id}.{self.version}{self.extension}"

    @property
    def is_zip(self) -> bool:
        return self.extension in ZIP_EXTENSIONS


def is_valid_package_id(package_id: str) -> bool:
    return len(package_id) <= MAX_PACKAGE_ID_LENGTH and bool(_PACKAGE_ID.fullmatch(package_id))


def split_extension(name: str) -> tuple[str, str]:
    """(stem, lowercase extension); ValueError when the extension is not an archive's."""
    lowered = name.lower()
    for extension in ARCHIVE_EXTENSIONS:
        if lowered.endswith(extension) and len(name) > len(extension):
            return name[: -len(extension)], extension
    known = ", ".join(ARCHIVE_EXTENSIONS)
    raise ValueError(f"{name!r} does not end with a package extension ({known})")


def parse_package_filename(name: str) -> PackageFilename:
    """`MyApp.Web.1.2.3.zip` → (`MyApp.Web`, `1.2.3`, `.zip`); ValueError if invalid."""
    if not name or len(name) > MAX_FILENAME_LENGTH:
        raise ValueError(f"a package file name has 1 to {MAX_FILENAME_LENGTH} characters")
    stem, extension = split_extension(name)
    for cut in _version_starts(stem):
        package_id, version = stem[: cut - 1], stem[cut:]
        if _PACKAGE_ID.fullmatch(package_id) and _FILENAME_VERSION.fullmatch(version):
            if len(package_id) > MAX_PACKAGE_ID_LENGTH or len(version) > MAX_VERSION_LENGTH:
                break
            return PackageFilename(package_id, version, extension)
    raise ValueError(
        f"{name!r} is not <PackageId>.<Version><extension> (for example MyApp.Web.1.2.3.zip)"
    )


def format_package_filename(package_id: str, version: str, extension: str) -> str:
    return PackageFilename(package_id, version, extension.lower()).filename


def _version_starts(stem: str) -> list[int]:
    """Every index just after a `.` that is followed by a digit, left to right."""
    return [
        index + 1
        for index, character in enumerate(stem[:-1])
        if character == "." and stem[index + 1].isascii() and stem[index + 1].isdigit()
    ]
