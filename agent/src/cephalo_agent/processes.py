"""Finding and signalling a script's process group, also one started by a previous agent run.

Scripts run in their own session, so their process id is also their process-group id and
`killpg` reaches everything they started. After an agent restart the journal only has the pid;
to avoid signalling an unrelated process that reused it, the journal also records the process's
identity (boot id and start time, on Linux) and both must match.
"""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path
from typing import NamedTuple

_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


def _boot_id() -> str | None:
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return None


class _Stat(NamedTuple):
    state: str
    pgrp: int
    start: str


def _stat(pid: int) -> _Stat | None:
    """State, process group and start time (clock ticks since boot) from /proc/<pid>/stat."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20:
        return None
    return _Stat(state=fields[0], pgrp=int(fields[2]), start=fields[19])


def process_identity(pid: int) -> str | None:
    """A string that differs for a different process with the same pid (None if unknowable)."""
    boot, stat = _boot_id(), _stat(pid)
    if boot is None or stat is None:
        return None
    return f"{boot}:{stat.start}"


def _live_members(pgid: int) -> int | None:
    """Non-zombie processes in the group, or None without /proc.

    Zombies do not count: the group is finished even if init has not reaped them yet.
    """
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    count = 0
    for pid in pids:
        stat = _stat(pid)
        if stat is not None and stat.pgrp == pgid and stat.state != "Z":
            count += 1
    return count


def group_alive(pgid: int, identity: str | None) -> bool:
    """Whether the process group started as `pgid` (with that leader identity) still runs.

    A group outlives its leader, and Linux does not hand out a pid that is still in use as a
    group id, so a live group whose leader is gone is still ours. A live leader with a different
    identity, or a different boot, means the pid was reused.
    """
    if identity is not None:
        boot, _, start = identity.partition(":")
        if _boot_id() not in (None, boot):
            return False
        leader = _stat(pgid)
        if leader is not None and leader.start != start:
            return False
    members = _live_members(pgid)
    if members is not None:
        return members > 0
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def signal_group(pgid: int, signum: signal.Signals) -> None:
    """Signal every process of the group; a group that is already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)
