"""The on-disk ticket journal: what makes `start_script` run once and survive agent restarts.

Layout of `tickets/<ticket>/`:

- `command.json`: the start command as received, sensitive values redacted (for diagnosis).
- `state.json`: state, pid and process identity, times, deadline; replaced atomically.
- `output.jsonl`: one `ProcessOutput` JSON per line, sequence 1, 2, 3, ... in file order.
  Each line is flushed before anyone can read it back, so a reported line is always on disk.
- `exit_code`: written (atomically, before `state.json` says Complete) when the script is done.
  When present it is authoritative.

The existence of the ticket directory is the idempotency record: it is created with an exclusive
`mkdir` before the process starts and is never removed by `complete_script`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
from io import BufferedWriter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from cephalo_agent.config import atomic_write, fsync_directory
from cephalo_common.agent_protocol import LogSource, ProcessOutput, ProcessState

COMMAND_FILE = "command.json"
STATE_FILE = "state.json"
OUTPUT_FILE = "output.jsonl"
EXIT_CODE_FILE = "exit_code"

_TICKET = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}")


class InvalidTicket(ValueError):
    """A ticket that cannot safely name a directory (it becomes `tickets/<ticket>/`)."""


def validate_ticket(ticket: str) -> str:
    if not _TICKET.fullmatch(ticket):
        raise InvalidTicket(
            "a ticket must be 1-200 characters of letters, digits, '_', '.' or '-', "
            "and must not start with '.' or '-'"
        )
    return ticket


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class TicketState(BaseModel):
    """`state.json`: enough to answer for the ticket, and to find its process, after a restart."""

    model_config = ConfigDict(extra="ignore")

    ticket: str
    state: ProcessState = ProcessState.PENDING
    exit_code: int | None = None
    pid: int | None = None
    process_identity: str | None = None
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None
    deadline: float | None = None  # epoch seconds; the timeout survives a restart
    timeout_seconds: int | None = None
    isolation_mutex: str | None = None  # the mutex a FullIsolation script holds (or waits for)


class TicketJournal:
    """One ticket's directory. Not thread-safe; the agent uses it from its single event loop."""

    def __init__(self, directory: Path, state: TicketState) -> None:
        self.directory = directory
        self.state = state
        self._offsets: list[int] = []  # byte offset of line with sequence i + 1
        self._end = 0
        self._writer: BufferedWriter | None = None
        self._index_output()

    @property
    def ticket(self) -> str:
        return self.state.ticket

    @property
    def last_sequence(self) -> int:
        return len(self._offsets)

    @property
    def output_path(self) -> Path:
        return self.directory / OUTPUT_FILE

    @classmethod
    def create(cls, root: Path, ticket: str, command: dict[str, Any]) -> TicketJournal:
        """Claim the ticket; raises `FileExistsError` if it was ever claimed before."""
        directory = root / validate_ticket(ticket)
        root.mkdir(parents=True, exist_ok=True)
        directory.mkdir(mode=0o700)
        fsync_directory(root)
        atomic_write(directory / COMMAND_FILE, json.dumps(command, indent=2).encode())
        journal = cls(directory, TicketState(ticket=ticket, created_at=utc_now()))
        journal.save_state()
        return journal

    @classmethod
    def open(cls, root: Path, ticket: str) -> TicketJournal | None:
        """Read a ticket back, or None if it was never started here.

        A damaged or missing `state.json` is read as Pending: the caller then treats the outcome
        as unknown rather than running the script a second time.
        """
        directory = root / validate_ticket(ticket)
        if not directory.is_dir():
            return None
        try:
            state = TicketState.model_validate_json((directory / STATE_FILE).read_bytes())
        except (OSError, ValidationError, ValueError):
            state = TicketState(ticket=ticket, created_at=utc_now())
        exit_code = _read_exit_code(directory / EXIT_CODE_FILE)
        if exit_code is not None:
            state.state, state.exit_code = ProcessState.COMPLETE, exit_code
        return cls(directory, state)

    @staticmethod
    def tickets(root: Path) -> list[str]:
        if not root.is_dir():
            return []
        return sorted(p.name for p in root.iterdir() if p.is_dir() and _TICKET.fullmatch(p.name))

    def save_state(self) -> None:
        atomic_write(self.directory / STATE_FILE, self.state.model_dump_json(indent=2).encode())

    def complete(self, exit_code: int) -> None:
        """Record the outcome: `exit_code` first, then `state.json`, then release the log file."""
        atomic_write(self.directory / EXIT_CODE_FILE, f"{exit_code}\n".encode())
        self.state.state = ProcessState.COMPLETE
        self.state.exit_code = exit_code
        self.state.completed_at = utc_now()
        self.save_state()
        self.close()

    def append(self, source: LogSource, text: str) -> ProcessOutput:
        """Journal one log line and flush it; only then is it visible to `read`."""
        if self._writer is None:
            self._writer = open(self.output_path, "ab")  # noqa: SIM115 - held open while running
        line = ProcessOutput(
            sequence=self.last_sequence + 1, source=source, text=text, time=utc_now()
        )
        data = line.model_dump_json().encode() + b"\n"
        self._writer.write(data)
        self._writer.flush()
        self._offsets.append(self._end)
        self._end += len(data)
        return line

    def read(self, after: int, *, limit: int, max_bytes: int) -> list[ProcessOutput]:
        """Lines with sequence > `after`: at most `limit`, and about `max_bytes` (at least one)."""
        start = max(after, 0)
        if start >= self.last_sequence:
            return []
        lines: list[ProcessOutput] = []
        size = 0
        with open(self.output_path, "rb") as handle:
            handle.seek(self._offsets[start])
            for _ in range(start, min(self.last_sequence, start + limit)):
                raw = handle.readline()
                if lines and size + len(raw) > max_bytes:
                    break
                size += len(raw)
                lines.append(ProcessOutput.model_validate_json(raw))
        return lines

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _index_output(self) -> None:
        """Rebuild the sequence → offset index; drop a torn last line left by a crash."""
        try:
            handle = open(self.output_path, "r+b")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return
        with handle:
            position = 0
            for line in handle:
                if not line.endswith(b"\n"):
                    handle.truncate(position)
                    break
                self._offsets.append(position)
                position += len(line)
        self._end = position


def _read_exit_code(path: Path) -> int | None:
    with contextlib.suppress(FileNotFoundError, ValueError):
        return int(path.read_text().strip())
    return None


def remove_tree(path: Path) -> None:
    """Delete a work directory, tolerating files a script made read-only."""
    if not path.exists():
        return
    for current, dirs, _files in os.walk(path):
        for name in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(current, name), 0o700)
    shutil.rmtree(path, ignore_errors=True)
