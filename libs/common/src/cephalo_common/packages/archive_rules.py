"""Which archive entries are unsafe to extract: one rule set for package-feed (on push)
and the step runner (again on the target, before it writes anything).

Stdlib only: the step runner's zipapp bundles this module as it is. Each check returns the
reason an entry is refused, or None; the caller raises its own error with it.
"""

from __future__ import annotations

import re
import stat
import tarfile
import zipfile

_DRIVE = re.compile(r"^[A-Za-z]:")


def unsafe_name(name: str) -> str | None:
    """Why an entry name could write outside the extraction folder, or None if it cannot."""
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


def unsafe_zip_entry(info: zipfile.ZipInfo) -> str | None:
    """Why a zip entry is refused (name, encryption, Unix link or special file), or None."""
    name = info.orig_filename
    reason = unsafe_name(name)
    if reason is not None:
        return reason
    if info.flag_bits & 0x1:
        return f"entry {name!r} is encrypted"
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode:
        if stat.S_ISLNK(mode):
            return f"entry {name!r} is a symbolic link"
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            return f"entry {name!r} is a device, FIFO or socket"
    return None


def unsafe_tar_member(member: tarfile.TarInfo) -> str | None:
    """Why a tar member is refused (name, or anything but a plain file or folder), or None."""
    name = member.name
    reason = unsafe_name(name)
    if reason is not None:
        return reason
    if member.issym():
        return f"entry {name!r} is a symbolic link"
    if member.islnk():
        return f"entry {name!r} is a hard link"
    if member.ischr() or member.isblk() or member.isfifo():
        return f"entry {name!r} is a device or FIFO"
    if member.issparse():
        return f"entry {name!r} is a sparse file"
    if not (member.isreg() or member.isdir()):
        return f"entry {name!r} has an unsupported type"
    return None
