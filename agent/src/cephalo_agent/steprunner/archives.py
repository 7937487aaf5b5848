"""Extract a package safely: the package feed's rules, applied again on the target.

Refused: absolute paths, `..`, drive letters, control characters, symlinks, hardlinks,
devices, FIFOs, encrypted zip entries, and archives over the entry/size limits. Entries are
written one by one through paths checked to stay inside the destination; `extractall` is
never used. The format is recognised by its first bytes, not by a file name.
"""

from __future__ import annotations

import re
import shutil
import stat
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from cephalo_agent.steprunner.errors import StepFailed

_DRIVE = re.compile(r"^[A-Za-z]:")
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class ExtractionLimits:
    max_entries: int = 100_000
    max_total_bytes: int = 8 * 1024**3


def unsafe_name(name: str) -> str | None:
    """Why an entry name could write outside the folder, or None (the feed's rule)."""
    if not name:
        return "an entry has an empty name"
    if any(ord(character) < 32 or ord(character) == 127 for character in name):
        return f"entry {name!r} has a control character in its name"
    if name[0] in "/\\":
        return f"entry {name!r} has an absolute path"
    if _DRIVE.match(name):
        return f"entry {name!r} names a drive"
    if ".." in re.split(r"[\\/]", name):
        return f"entry {name!r} climbs out of the folder (..)"
    return None


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
        reason = unsafe_name(name)
        if reason is not None:
            raise StepFailed(f"The package is unsafe: {reason}.")
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
                mode = info.external_attr >> 16
                if info.flag_bits & 0x1:
                    raise StepFailed(
                        f"The package is unsafe: entry {info.filename!r} is encrypted."
                    )
                if (
                    info.create_system == 3
                    and mode
                    and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_IFMT(mode) == 0)
                ):
                    kind = "a symbolic link" if stat.S_ISLNK(mode) else "a device, FIFO or socket"
                    raise StepFailed(f"The package is unsafe: entry {info.filename!r} is {kind}.")
                path = writer.target(info.orig_filename, info.file_size)
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                with package.open(info) as source:
                    writer.write(path, source, bool(mode & 0o111))
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise StepFailed(f"The package is not a valid zip: {error}") from None
    return writer.files


def _extract_tar(archive: Path, destination: Path, limits: ExtractionLimits) -> int:
    writer = _Writer(destination, limits)
    try:
        with tarfile.open(archive, mode="r|gz") as package:
            for member in package:
                _check_member(member)
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


def _check_member(member: tarfile.TarInfo) -> None:
    kind = None
    if member.issym():
        kind = "a symbolic link"
    elif member.islnk():
        kind = "a hard link"
    elif member.ischr() or member.isblk() or member.isfifo():
        kind = "a device or FIFO"
    elif member.issparse() or not (member.isreg() or member.isdir()):
        kind = "of an unsupported type"
    if kind is not None:
        raise StepFailed(f"The package is unsafe: entry {member.name!r} is {kind}.")
