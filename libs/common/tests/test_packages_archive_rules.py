"""The archive rules package-feed and the step runner both apply, on in-memory entries."""

from __future__ import annotations

import stat
import tarfile
import zipfile

import pytest

from cephalo_common.packages.archive_rules import unsafe_name, unsafe_tar_member, unsafe_zip_entry


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty name"),
        ("bin/a\x07b", "control character"),
        ("/etc/passwd", "absolute path"),
        ("\\windows\\system32", "absolute path"),
        ("C:evil.txt", "names a drive"),
        ("app/../../etc/cron.d/x", "climbs out"),
        ("app\\..\\evil", "climbs out"),
    ],
)
def test_names_that_could_leave_the_folder_are_refused(name: str, reason: str) -> None:
    refused = unsafe_name(name)
    assert refused is not None and reason in refused


@pytest.mark.parametrize("name", ["app/web.config", "a..b/c", "deep/er/file.txt", "dir/"])
def test_ordinary_names_pass(name: str) -> None:
    assert unsafe_name(name) is None


def _zip_entry(name: str, mode: int, *, encrypted: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = mode << 16
    if encrypted:
        info.flag_bits |= 0x1
    return info


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (_zip_entry("link", stat.S_IFLNK | 0o777), "symbolic link"),
        (_zip_entry("fifo", stat.S_IFIFO | 0o600), "device, FIFO or socket"),
        (_zip_entry("secret.txt", stat.S_IFREG | 0o644, encrypted=True), "encrypted"),
        (_zip_entry("../x", stat.S_IFREG | 0o644), "climbs out"),
    ],
)
def test_unsafe_zip_entries_are_refused(info: zipfile.ZipInfo, reason: str) -> None:
    refused = unsafe_zip_entry(info)
    assert refused is not None and reason in refused


@pytest.mark.parametrize("mode", [stat.S_IFREG | 0o755, stat.S_IFDIR | 0o755, 0o644, 0])
def test_plain_zip_files_and_folders_pass(mode: int) -> None:
    assert unsafe_zip_entry(_zip_entry("app/file", mode)) is None


def _tar_member(name: str, kind: bytes, *, sparse: bool = False) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    if sparse:
        member.sparse = []  # what tarfile sets when it reads a GNU sparse header
    return member


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        (_tar_member("link", tarfile.SYMTYPE), "symbolic link"),
        (_tar_member("hard", tarfile.LNKTYPE), "hard link"),
        (_tar_member("dev", tarfile.CHRTYPE), "device or FIFO"),
        (_tar_member("fifo", tarfile.FIFOTYPE), "device or FIFO"),
        (_tar_member("holes", tarfile.GNUTYPE_SPARSE, sparse=True), "sparse file"),
        (_tar_member("volume", b"V"), "unsupported type"),
        (_tar_member("/abs", tarfile.REGTYPE), "absolute path"),
    ],
)
def test_unsafe_tar_members_are_refused(member: tarfile.TarInfo, reason: str) -> None:
    refused = unsafe_tar_member(member)
    assert refused is not None and reason in refused


@pytest.mark.parametrize("kind", [tarfile.REGTYPE, tarfile.DIRTYPE])
def test_plain_tar_files_and_folders_pass(kind: bytes) -> None:
    assert unsafe_tar_member(_tar_member("app/x", kind)) is None
