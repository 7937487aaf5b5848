"""Archive safety: read a pushed archive's index, never extract it, and refuse the unsafe.

Refused (B6 in the reliability and security reference): absolute paths, `..`, drive
letters and backslash variants of both, control characters, symlinks, hardlinks, devices,
FIFOs, sparse or unknown entry types, encrypted zip entries, overlapping zip entries (the
non-recursive zip bomb), more entries than allowed, and entries or totals whose
uncompressed size or compression ratio is over the limits. A tar inside gzip/bzip2 has no
index, so it is decompressed as a stream (never to disk) through a counter that stops at
the size and ratio limits.
"""

from __future__ import annotations

import bz2
import gzip
import io
import struct
import tarfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from xml.etree import ElementTree

from cephalo_common.packages import TAR_EXTENSIONS, ZIP_EXTENSIONS
from cephalo_common.packages.archive_rules import unsafe_tar_member, unsafe_zip_entry

EOCD_SIGNATURE = b"PK\x05\x06"
ZIP64_LOCATOR_SIGNATURE = b"PK\x06\x07"
ZIP64_EOCD_SIGNATURE = b"PK\x06\x06"
EOCD_SIZE = 22
MAX_COMMENT = 65535
MAX_CENTRAL_DIRECTORY_BYTES = 64 * 1024 * 1024
MAX_NUSPEC_BYTES = 1024 * 1024
TAR_BLOCK = 512
MAX_TAR_HEADER_BYTES = 1024 * 1024
TAR_METADATA_TYPES = frozenset(
    {
        tarfile.XHDTYPE,
        tarfile.XGLTYPE,
        tarfile.SOLARIS_XHDTYPE,
        tarfile.GNUTYPE_LONGNAME,
        tarfile.GNUTYPE_LONGLINK,
    }
)


class ArchiveRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ArchiveLimits:
    max_entries: int
    max_entry_bytes: int
    max_total_uncompressed_bytes: int
    max_compression_ratio: float
    ratio_min_bytes: int


@dataclass(frozen=True)
class ArchiveSummary:
    entries: int
    uncompressed_bytes: int
    release_notes: str | None = None


def inspect_archive(path: Path, extension: str, limits: ArchiveLimits) -> ArchiveSummary:
    """The archive's shape if it is safe; `ArchiveRejected` with the reason otherwise."""
    if extension in ZIP_EXTENSIONS:
        return inspect_zip(path, limits, nupkg=extension == ".nupkg")
    if extension in TAR_EXTENSIONS:
        return inspect_tar(path, extension, limits)
    raise ArchiveRejected(f"{extension} archives cannot be inspected")


class _Budget:
    """Running totals against the limits, shared by both archive kinds."""

    def __init__(self, limits: ArchiveLimits, archive_bytes: int) -> None:
        self.limits = limits
        self.archive_bytes = max(archive_bytes, 1)
        self.entries = 0
        self.total = 0

    def add(self, name: str, size: int, compressed: int | None) -> None:
        limits = self.limits
        self.entries += 1
        if self.entries > limits.max_entries:
            raise ArchiveRejected(f"the archive has more than {limits.max_entries} entries")
        if size > limits.max_entry_bytes:
            raise ArchiveRejected(
                f"entry {name!r} is {size} bytes uncompressed, over the limit of "
                f"{limits.max_entry_bytes}"
            )
        if compressed is not None and size >= limits.ratio_min_bytes and size > 0:
            ratio = size / compressed if compressed else float("inf")
            if ratio > limits.max_compression_ratio:
                raise ArchiveRejected(
                    f"entry {name!r} expands {ratio:.0f} times, over the limit of "
                    f"{limits.max_compression_ratio:g}"
                )
        self.total += size
        self.check_total()

    def check_total(self, expanded: int | None = None) -> None:
        limits = self.limits
        total = self.total if expanded is None else expanded
        if total > limits.max_total_uncompressed_bytes:
            raise ArchiveRejected(
                f"the archive holds more than {limits.max_total_uncompressed_bytes} bytes "
                "uncompressed"
            )
        ratio = total / self.archive_bytes
        if total >= limits.ratio_min_bytes and ratio > limits.max_compression_ratio:
            raise ArchiveRejected(
                f"the archive expands {ratio:.0f} times, over the limit of "
                f"{limits.max_compression_ratio:g}"
            )


def inspect_zip(path: Path, limits: ArchiveLimits, *, nupkg: bool = False) -> ArchiveSummary:
    size = path.stat().st_size
    budget = _Budget(limits, size)
    with path.open("rb") as handle:
        declared_entries, directory_bytes = _central_directory_shape(handle, size)
        if declared_entries > limits.max_entries:
            raise ArchiveRejected(f"the archive has more than {limits.max_entries} entries")
        if directory_bytes > MAX_CENTRAL_DIRECTORY_BYTES:
            raise ArchiveRejected("the zip central directory is unreasonably large")
        try:
            archive = zipfile.ZipFile(handle)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as error:
            raise ArchiveRejected(f"not a valid zip archive: {error}") from None
        with archive:
            infos = archive.infolist()
            for info in infos:
                _check_zip_entry(info)
                budget.add(info.orig_filename, info.file_size, info.compress_size)
            _check_no_overlap(infos, archive.start_dir)
            notes = _nuspec_release_notes(archive, infos) if nupkg else None
    return ArchiveSummary(budget.entries, budget.total, notes)


def _central_directory_shape(handle: BinaryIO, size: int) -> tuple[int, int]:
    """(entries, central directory bytes) from the end record, read before zipfile loads
    the whole directory into memory."""
    tail_size = min(size, EOCD_SIZE + MAX_COMMENT)
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    position = tail.rfind(EOCD_SIGNATURE)
    if position < 0 or len(tail) - position < EOCD_SIZE:
        raise ArchiveRejected("not a valid zip archive: no end of central directory record")
    fields = struct.unpack("<4s4H2LH", tail[position : position + EOCD_SIZE])
    entries, directory_bytes = fields[4], fields[5]
    if entries == 0xFFFF or directory_bytes == 0xFFFFFFFF:
        return _zip64_shape(handle, size - tail_size + position)
    return int(entries), int(directory_bytes)


def _zip64_shape(handle: BinaryIO, eocd_offset: int) -> tuple[int, int]:
    if eocd_offset < 20:
        raise ArchiveRejected("not a valid zip64 archive")
    handle.seek(eocd_offset - 20)
    locator = handle.read(20)
    if len(locator) != 20 or locator[:4] != ZIP64_LOCATOR_SIGNATURE:
        raise ArchiveRejected("not a valid zip64 archive: no locator")
    (record_offset,) = struct.unpack("<Q", locator[8:16])
    handle.seek(record_offset)
    record = handle.read(56)
    if len(record) != 56 or record[:4] != ZIP64_EOCD_SIGNATURE:
        raise ArchiveRejected("not a valid zip64 archive: no end record")
    entries, directory_bytes = struct.unpack("<QQ", record[32:48])
    return int(entries), int(directory_bytes)


def _check_zip_entry(info: zipfile.ZipInfo) -> None:
    reason = unsafe_zip_entry(info)
    if reason is not None:
        raise ArchiveRejected(reason)


def _check_no_overlap(infos: list[zipfile.ZipInfo], directory_start: int) -> None:
    """Each entry's data must end before the next entry's header starts (a local header is
    at least 30 bytes): overlapping entries are how one deflate stream becomes many files."""
    ordered = sorted(infos, key=lambda info: info.header_offset)
    for current, following in zip(ordered, [*ordered[1:], None], strict=True):
        end = current.header_offset + 30 + current.compress_size
        limit = following.header_offset if following is not None else directory_start
        if end > limit:
            raise ArchiveRejected(f"entry {current.orig_filename!r} overlaps another entry")


def _nuspec_release_notes(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> str | None:
    """`<releaseNotes>` of the root `.nuspec`, if it is small and declares no DTD."""
    for info in infos:
        if "/" in info.filename or not info.filename.lower().endswith(".nuspec"):
            continue
        if info.file_size > MAX_NUSPEC_BYTES:
            return None
        try:
            text = archive.read(info).decode("utf-8-sig")
        except (zipfile.BadZipFile, UnicodeDecodeError, zlib.error, NotImplementedError):
            raise ArchiveRejected(f"entry {info.filename!r} cannot be read") from None
        if "<!doctype" in text.lower() or "<!entity" in text.lower():
            raise ArchiveRejected(f"entry {info.filename!r} declares a DTD")
        try:
            root = ElementTree.fromstring(text)  # noqa: S314 - no DTD, so no entities  # nosec B314
        except ElementTree.ParseError as error:
            raise ArchiveRejected(f"entry {info.filename!r} is not valid XML: {error}") from None
        for element in root.iter():
            if element.tag.rsplit("}", 1)[-1] == "releaseNotes":
                return (element.text or "").strip()
        return None
    return None


class _CountingReader(io.RawIOBase):
    """A decompressed stream that stops at the size and ratio limits as it is read."""

    def __init__(self, inner: io.BufferedIOBase | BinaryIO, budget: _Budget, ceiling: int) -> None:
        self._inner = inner
        self._budget = budget
        self._ceiling = ceiling
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        count = len(data)
        buffer[:count] = data
        self.read_bytes += count
        if self.read_bytes > self._ceiling:
            raise ArchiveRejected(
                f"the archive holds more than "
                f"{self._budget.limits.max_total_uncompressed_bytes} bytes uncompressed"
            )
        self._budget.check_total(self.read_bytes)
        return count


def inspect_tar(path: Path, extension: str, limits: ArchiveLimits) -> ArchiveSummary:
    size = path.stat().st_size
    budget = _Budget(limits, size)
    ceiling = limits.max_total_uncompressed_bytes + (limits.max_entries + 2) * 3 * TAR_BLOCK
    with path.open("rb") as raw:
        inner = _decompressor(raw, extension)
        counting = _CountingReader(inner, budget, ceiling)
        try:
            with tarfile.open(fileobj=counting, mode="r|", tarinfo=_GuardedTarInfo) as archive:
                for member in archive:
                    _check_tar_member(member)
                    budget.add(member.name, member.size, None)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
            raise ArchiveRejected(f"not a valid {extension} archive: {error}") from None
    return ArchiveSummary(budget.entries, budget.total)


class _GuardedTarInfo(tarfile.TarInfo):
    """tarfile reads pax and GNU long-name headers whole into memory: refuse big ones
    before it does (a 1 GiB pax header gzips to about 1 MiB)."""

    def _proc_member(self, archive: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in TAR_METADATA_TYPES and self.size > MAX_TAR_HEADER_BYTES:
            raise ArchiveRejected(
                f"the archive has a {self.size}-byte metadata header (the limit is "
                f"{MAX_TAR_HEADER_BYTES})"
            )
        member: tarfile.TarInfo = super()._proc_member(archive)  # type: ignore[misc]
        return member


def _decompressor(raw: BinaryIO, extension: str) -> io.BufferedIOBase | BinaryIO:
    if extension in (".tar.gz", ".tgz"):
        return gzip.GzipFile(fileobj=raw, mode="rb")
    if extension in (".tar.bz2", ".tar.bz", ".tbz2", ".tbz"):
        return bz2.BZ2File(raw, mode="rb")
    return raw


def _check_tar_member(member: tarfile.TarInfo) -> None:
    reason = unsafe_tar_member(member)
    if reason is not None:
        raise ArchiveRejected(reason)
