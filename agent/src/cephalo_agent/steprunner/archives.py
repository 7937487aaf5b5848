"""Extract a package safely: the package feed's rules, applied again on the target.

Refused (cephalo_common.packages.archive_rules): absolute paths, `..`, drive letters,
control characters, symlinks, hardlinks, devices, FIFOs, sparse files, encrypted zip
entries; and archives over the entry/size limits. Entries are
written one by one through paths checked to stay inside the destination; `extractall` is
never used. The format is recognised by its first bytes, not by a file name.
"""

from __future__ import annotations

import shutil
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cephalo_agent.steprunner.errors import StepFailed
from cephalo_common.packages.archive_rules import unsafe_tar_member, unsafe_zip_entry

ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ExtractionLimits:
    max_entries: int = 100_000
    max_total_bytes: int = 8 * 1024**3


def extract(archive: Path, destination: Path, limits: ExtractionLimits | None = None) -> int:
    """Extract into `destination` (created); the number of files written."""
    limits = limits or ExtractionLimits()
    with archive.open("rb") as handle:
        magic = handle.read(4)
    destination.mkdir(parents=True, exist_ok=True)
    if magic in (ZIP_MAGIC, EMPTY_ZIP_MAGIC):
        return _extract_zip(archive, destination, limits)
    if magic.startswith(GZIP_MAGIC):
        return _extract_tar(archive, destination, limits)
    raise StepFailed(f"{archive.name} is neither a zip nor a tar.gz package")


class _Writer:
    def __init__(self, destination: Path, limits: ExtractionLimits) -> None:
        self.root = destination.resolve()
        self.limits = limits
        self.entries = 0
        self.total = 0
        self.files = 0

    def target(self, name: str, size: int) -> Path:
        self.entries += 1
        self.total += size
        if self.entries > self.limits.max_entries:
            raise StepFailed(f"The package has more than {self.limits.max_entries} entries.")
        if self.total > self.limits.max_total_bytes:
            raise StepFailed(f"The package expands to over {self.limits.max_total_bytes} bytes.")
        path = (self.root / name.replace("\\", "/")).resolve()
        if path != self.root and self.root not in path.parents:
            raise StepFailed(f"The package is unsafe: entry {name!r} leaves the folder.")
        return path

    def write(self, path: Path, source: IO[bytes], executable: bool) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.is_dir():
            raise StepFailed(f"The package writes {path.name} twice or over a folder.")
        with path.open("wb") as handle:
            shutil.copyfileobj(source, handle)
        path.chmod(0o755 if executable else 0o644)
        self.files += 1


def _extract_zip(archive: Path, destination: Path, limits: ExtractionLimits) -> int:
    writer = _Writer(destination, limits)
    try:
        with zipfile.ZipFile(archive) as package:
            for info in package.infolist():
                _refuse(unsafe_zip_entry(info))
                path = writer.target(info.orig_filename, info.file_size)
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                with package.open(info) as source:
                    writer.write(path, source, bool((info.external_attr >> 16) & 0o111))
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise StepFailed(f"The package is not a valid zip: {error}") from None
    return writer.files


def _extract_tar(archive: Path, destination: Path, limits: ExtractionLimits) -> int:
    writer = _Writer(destination, limits)
    try:
        with tarfile.open(archive, mode="r|gz") as package:
            for member in package:
                _refuse(unsafe_tar_member(member))
                path = writer.target(member.name, member.size)
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                source = package.extractfile(member)
                assert source is not None
                writer.write(path, source, bool(member.mode & 0o111))
    except (tarfile.TarError, OSError, EOFError) as error:
        raise StepFailed(f"The package is not a valid tar.gz: {error}") from None
    return writer.files


def _refuse(reason: str | None) -> None:
    if reason is not None:
        raise StepFailed(f"The package is unsafe: {reason}.")
