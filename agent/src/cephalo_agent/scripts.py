"""The ScriptService: runs each ticket's script once and answers for it until it is completed.

Invariants (see the README):

- A ticket runs at most once. The journal directory is claimed before the process starts and
  is kept after `complete_script`, so a retried or late `start_script` only reports status.
- A log line is on disk before it can be reported, and each has the next sequence number.
- Sensitive values never reach argv and are masked in every captured line.
- After a restart, a ticket the journal says was running is never re-run: it is watched to its
  end if its process group is still alive, and then (or at once) completed with exit code -2.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import json
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cephalo_agent.config import AgentPaths, atomic_write
from cephalo_agent.isolation import NamedMutexes
from cephalo_agent.journal import (
    EXIT_CODE_FILE,
    TicketJournal,
    remove_tree,
    utc_now,
    validate_ticket,
)
from cephalo_agent.processes import group_alive, process_identity, signal_group
from cephalo_common.agent_protocol import (
    ExitCodes,
    LogSource,
    ProcessState,
    ScriptIsolation,
    ScriptStatusResponse,
    ScriptSyntax,
    ScriptTicketRequest,
    StartScriptCommand,
)

log = logging.getLogger(__name__)

EXIT_CANCELLED = ExitCodes.CANCELLED
EXIT_AGENT_RESTARTED = ExitCodes.OUTCOME_UNKNOWN
EXIT_TIMED_OUT = ExitCodes.TIMED_OUT
EXIT_FAILED_TO_START = ExitCodes.FAILED_TO_START
EXIT_ISOLATION_TIMEOUT = ExitCodes.ISOLATION_TIMEOUT

MASK = "********"
VARIABLES_FILE = "variables.json"
VARIABLES_FILE_ENV = "CEPHALO_VARIABLES_FILE"
VARIABLE_ENV_PREFIX = "CEPHALO_VAR_"
RESTARTED_MESSAGE = "The agent restarted while this script was running; the outcome is unknown."
ADOPTED_MESSAGE = (
    "The agent restarted while this script was running; its process is still alive. "
    "Waiting for it to end; its further output is not captured."
)
CANCELLED_MESSAGE = "The script was cancelled."

# Never hand these from the agent's environment to a script.
_WITHHELD_ENV = ("CEPHALO_API_KEY",)
_SCRIPT_FILES = {ScriptSyntax.BASH: "script.sh", ScriptSyntax.SH: "script.sh"}
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")


@dataclass(frozen=True)
class ScriptSettings:
    """Limits and grace periods of the script service; the defaults suit production."""

    max_logs_per_call: int = 1000
    # Keeps one response well under a WebSocket peer's default 1 MiB frame limit.
    max_log_bytes_per_call: int = 512 * 1024
    max_line_bytes: int = 64 * 1024
    # SIGTERM first; SIGKILL for the whole group after this long.
    kill_grace_seconds: float = 3.0
    # After the script exits, wait this long for background children holding its pipes.
    drain_seconds: float = 2.0
    orphan_poll_seconds: float = 0.5
    cancel_wait_seconds: float = 15.0
    completed_cache_size: int = 256


class UnknownTicket(LookupError):
    """No script was ever started with this ticket on this agent."""


class ScriptStillRunning(RuntimeError):
    """`complete_script` on a script that has not finished; cancel it first."""


class _EndReason(enum.Enum):
    CANCELLED = "cancelled"
    TIMED_OUT = "timed out"


class Masker:
    """Replaces every occurrence of any sensitive value (and of each line of one) by `MASK`."""

    def __init__(self, secrets: Iterable[str]) -> None:
        pieces: set[str] = set()
        for secret in secrets:
            pieces.add(secret)
            pieces.update(line.strip("\r") for line in secret.split("\n"))
        ordered = sorted((p for p in pieces if p), key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern else text


@dataclass(eq=False)
class _Run:
    journal: TicketJournal
    masker: Masker = field(default_factory=lambda: Masker(()))
    process: asyncio.subprocess.Process | None = None
    end_reason: _EndReason | None = None
    started: asyncio.Event = field(default_factory=asyncio.Event)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    abort: asyncio.Event = field(default_factory=asyncio.Event)  # stops a wait for the mutex
    task: asyncio.Task[None] | None = None
    mutex: str | None = None  # the isolation mutex this run holds
    changed: asyncio.Event = field(default_factory=asyncio.Event)  # replaced on every news

    def touch(self) -> None:
        """Wake the calls waiting for news of this run (a line or the end)."""
        self.changed.set()
        self.changed = asyncio.Event()

    async def news(self, after: int, seconds: float | None) -> None:
        """Return once there is a line after `after` or the run is done, or after `seconds`."""
        if not seconds:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                while not self.done.is_set() and self.journal.last_sequence <= after:
                    await self.changed.wait()

    @property
    def ticket(self) -> str:
        return self.journal.ticket

    @property
    def pgid(self) -> int | None:
        return self.journal.state.pid

    def alive(self) -> bool:
        if self.process is not None:
            return self.process.returncode is None
        pgid = self.pgid
        return pgid is not None and group_alive(pgid, self.journal.state.process_identity)


def environment_name(variable: str) -> str:
    """`Octopus.Action.Name` → `CEPHALO_VAR_OCTOPUS_ACTION_NAME`."""
    return VARIABLE_ENV_PREFIX + _NON_ALNUM.sub("_", variable).upper()


class ScriptService:
    """Start, watch, cancel and complete scripts by ticket, journaled under `tickets_dir`."""

    def __init__(
        self,
        tickets_dir: Path,
        work_dir: Path,
        settings: ScriptSettings | None = None,
        *,
        runner_home: Path | None = None,
    ) -> None:
        self.tickets_dir = tickets_dir
        self.work_dir = work_dir
        self.runner_home = runner_home
        self.settings = settings or ScriptSettings()
        self._active: dict[str, _Run] = {}
        self._completed: collections.OrderedDict[str, _Run] = collections.OrderedDict()
        self.mutexes = NamedMutexes()
        for directory in (tickets_dir, work_dir):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    @classmethod
    def for_paths(cls, paths: AgentPaths, settings: ScriptSettings | None = None) -> ScriptService:
        return cls(paths.tickets, paths.work, settings, runner_home=paths.root)

    # -- RPC methods -------------------------------------------------------------------------

    async def start_script(self, command: StartScriptCommand) -> ScriptStatusResponse:
        """Start the ticket's script, unless this ticket was ever started: then report on it."""
        ticket = validate_ticket(command.ticket)
        existing = self._lookup(ticket)
        if existing is None:
            if command.timeout_seconds is not None and command.timeout_seconds <= 0:
                raise ValueError("timeout_seconds must be positive when given")
            journal = TicketJournal.create(self.tickets_dir, ticket, _redacted(command))
            secrets = [
                command.variables[n] for n in command.sensitive_variables if n in command.variables
            ]
            existing = _Run(journal, Masker(secrets))
            self._active[ticket] = existing
            existing.task = asyncio.create_task(self._execute(existing, command), name=ticket)
        await existing.started.wait()
        if command.wait_seconds:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(command.wait_seconds):
                    await existing.done.wait()
        return self._status(existing, 0)

    async def get_status(self, request: ScriptTicketRequest) -> ScriptStatusResponse:
        """With `wait_seconds`, held open until there is news (see `ScriptTicketRequest`)."""
        run = self._require(request.ticket)
        await run.news(request.last_log_sequence, request.wait_seconds)
        return self._status(run, request.last_log_sequence)

    async def cancel_script(self, request: ScriptTicketRequest) -> ScriptStatusResponse:
        """Kill the script's whole process group; it completes with exit code -1."""
        run = self._require(request.ticket)
        await run.started.wait()
        if not run.done.is_set():
            if run.end_reason is None:
                run.end_reason = _EndReason.CANCELLED
            run.abort.set()
            await self._kill(run)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.done.wait(), self.settings.cancel_wait_seconds)
        return self._status(run, request.last_log_sequence)

    async def complete_script(self, request: ScriptTicketRequest) -> ScriptStatusResponse:
        """Delete the work directory; the journal stays, so the ticket still never runs again."""
        run = self._require(request.ticket)
        if run.journal.state.state is not ProcessState.COMPLETE:
            raise ScriptStillRunning(
                f"script {run.ticket} is still running; cancel it before completing it"
            )
        remove_tree(self.work_dir / run.ticket)
        return self._status(run, request.last_log_sequence, report_undrained=True)

    # -- lifecycle ---------------------------------------------------------------------------

    async def recover(self) -> list[str]:
        """Read back every unfinished ticket after a restart; returns their tickets."""
        unfinished = [
            ticket
            for ticket in TicketJournal.tickets(self.tickets_dir)
            if ticket not in self._active
            and not (self.tickets_dir / ticket / EXIT_CODE_FILE).exists()
        ]
        for ticket in unfinished:
            self._lookup(ticket)
        return unfinished

    def active_tickets(self) -> list[str]:
        """Tickets this service is running or watching right now."""
        return list(self._active)

    async def aclose(self) -> None:
        """Stop watching scripts without touching them; their journals stay as they are."""
        tasks = [run.task for run in self._active.values() if run.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for run in self._active.values():
            run.journal.close()
        self._active.clear()

    # -- internals ---------------------------------------------------------------------------

    def _require(self, ticket: str) -> _Run:
        run = self._lookup(validate_ticket(ticket))
        if run is None:
            raise UnknownTicket(f"no script was started with ticket {ticket}")
        return run

    def _lookup(self, ticket: str) -> _Run | None:
        if (run := self._active.get(ticket)) is not None:
            return run
        if (run := self._completed.get(ticket)) is not None:
            self._completed.move_to_end(ticket)
            return run
        journal = TicketJournal.open(self.tickets_dir, ticket)
        if journal is None:
            return None
        run = _Run(journal)
        run.started.set()
        if journal.state.state is ProcessState.COMPLETE:
            run.done.set()
            self._remember_completed(run)
        else:
            self._active[ticket] = run
            self._recover(run)
        return run

    def _recover(self, run: _Run) -> None:
        """A ticket left unfinished by an earlier agent run: adopt its process or give up on it."""
        if run.pgid is not None and run.alive():
            log.warning("script %s outlived an agent restart; watching it", run.ticket)
            mutex = run.journal.state.isolation_mutex
            if mutex is not None and self.mutexes.take(mutex, run.ticket):
                run.mutex = mutex
            run.journal.append(LogSource.STDERR, ADOPTED_MESSAGE)
            run.task = asyncio.create_task(self._watch_orphan(run), name=run.ticket)
        else:
            log.warning("script %s was running when the agent stopped; outcome unknown", run.ticket)
            self._finish(run, EXIT_AGENT_RESTARTED, RESTARTED_MESSAGE)

    async def _execute(self, run: _Run, command: StartScriptCommand) -> None:
        if command.isolation is ScriptIsolation.FULL and not await self._isolate(run, command):
            return
        try:
            process = await self._spawn(run, command)
        except Exception as exc:
            log.exception("could not start script %s", run.ticket)
            message = run.masker(f"The agent could not start the script: {exc}")
            self._finish(run, EXIT_FAILED_TO_START, message)
            run.started.set()
            return
        run.process = process
        state = run.journal.state
        state.pid, state.process_identity = process.pid, process_identity(process.pid)
        state.state, state.started_at = ProcessState.RUNNING, utc_now()
        if command.timeout_seconds is not None:
            state.timeout_seconds = command.timeout_seconds
            state.deadline = time.time() + command.timeout_seconds
        run.journal.save_state()
        run.started.set()
        log.info("script %s started as pid %d", run.ticket, process.pid)
        try:
            await self._supervise(run, process)
        except Exception as exc:
            log.exception("lost track of script %s", run.ticket)
            signal_group(process.pid, signal.SIGKILL)
            self._finish(run, EXIT_AGENT_RESTARTED, f"The agent lost track of the script: {exc}")

    async def _isolate(self, run: _Run, command: StartScriptCommand) -> bool:
        """Wait for the isolation mutex; False once the run was finished instead (-1 or -5).

        `start_script` answers (Pending) as soon as the wait begins, so the server's call never
        waits for another script.
        """
        name = command.isolation_mutex_name
        run.journal.state.isolation_mutex = name
        run.journal.save_state()
        holder = self.mutexes.holder(name)
        if holder is not None:
            run.journal.append(
                LogSource.STDOUT,
                f"Waiting for the script isolation mutex {name!r}, held by script {holder}.",
            )
            run.touch()
        run.started.set()
        timeout = command.isolation_mutex_timeout_seconds
        acquired = await self.mutexes.acquire(name, run.ticket, timeout, run.abort)
        if acquired:
            run.mutex = name
        if run.end_reason is _EndReason.CANCELLED:
            self._finish(run, EXIT_CANCELLED, CANCELLED_MESSAGE)
            return False
        if not acquired:
            message = (
                f"The script did not start: the isolation mutex {name!r} was not free "
                f"within {timeout:g} seconds."
            )
            self._finish(run, EXIT_ISOLATION_TIMEOUT, message)
            return False
        return True

    async def _spawn(self, run: _Run, command: StartScriptCommand) -> asyncio.subprocess.Process:
        work = self.work_dir / run.ticket
        work.mkdir(mode=0o700, parents=True, exist_ok=True)
        if command.syntax is ScriptSyntax.PYTHON:
            script = work / "script.py"
            argv = [sys.executable, "-u", str(script)]
        else:
            script = work / _SCRIPT_FILES[command.syntax]
            shell = "/bin/bash" if command.syntax is ScriptSyntax.BASH else "/bin/sh"
            argv = [shell, str(script)]
        atomic_write(script, command.script_body.encode(), mode=0o700)
        variables_file = work / VARIABLES_FILE
        atomic_write(variables_file, json.dumps(command.variables, indent=2).encode())
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(VARIABLE_ENV_PREFIX) and k not in _WITHHELD_ENV
        }
        for name in sorted(command.variables):
            env[environment_name(name)] = command.variables[name]
        env[VARIABLES_FILE_ENV] = str(variables_file)
        env["CEPHALO_TICKET"] = run.ticket
        env["CEPHALO_WORK_DIR"] = str(work)
        if self.runner_home is not None:
            env.setdefault("CEPHALO_HOME", str(self.runner_home))
        return await asyncio.create_subprocess_exec(
            *argv,
            cwd=work,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )

    async def _supervise(self, run: _Run, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None and process.stderr is not None
        readers = [
            asyncio.create_task(self._pump(run, process.stdout, LogSource.STDOUT)),
            asyncio.create_task(self._pump(run, process.stderr, LogSource.STDERR)),
        ]
        try:
            deadline = run.journal.state.deadline
            timeout = None if deadline is None else max(deadline - time.time(), 0.0)
            try:
                await asyncio.wait_for(process.wait(), timeout)
            except TimeoutError:
                if run.end_reason is None:
                    run.end_reason = _EndReason.TIMED_OUT
                await self._kill(run)
                await process.wait()
            _, pending = await asyncio.wait(readers, timeout=self.settings.drain_seconds)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
        if pending:
            log.warning("script %s left children holding its output open", run.ticket)
        self._finish(run, *self._outcome(run, process.returncode))

    def _outcome(self, run: _Run, returncode: int | None) -> tuple[int, str | None]:
        if run.end_reason is _EndReason.CANCELLED:
            return EXIT_CANCELLED, CANCELLED_MESSAGE
        if run.end_reason is _EndReason.TIMED_OUT:
            seconds = run.journal.state.timeout_seconds
            return EXIT_TIMED_OUT, f"The script timed out after {seconds} seconds and was killed."
        if returncode is None:
            return EXIT_AGENT_RESTARTED, RESTARTED_MESSAGE
        return returncode, None

    async def _pump(self, run: _Run, stream: asyncio.StreamReader, source: LogSource) -> None:
        """Journal the stream line by line (long lines are split at `max_line_bytes`)."""
        limit = self.settings.max_line_bytes
        buffer = bytearray()
        while chunk := await stream.read(65536):
            buffer += chunk
            while (newline := buffer.find(b"\n")) >= 0 or len(buffer) >= limit:
                end = newline if 0 <= newline < limit else limit
                self._emit(run, source, bytes(buffer[:end]))
                del buffer[: end + 1 if end == newline else end]
        if buffer:
            self._emit(run, source, bytes(buffer))

    def _emit(self, run: _Run, source: LogSource, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace").removesuffix("\r")
        run.journal.append(source, run.masker(text))
        run.touch()

    async def _watch_orphan(self, run: _Run) -> None:
        """A process group from before a restart: enforce its deadline, wait for it to end."""
        deadline = run.journal.state.deadline
        while run.alive():
            if deadline is not None and time.time() >= deadline and run.end_reason is None:
                run.end_reason = _EndReason.TIMED_OUT
                await self._kill(run)
            await asyncio.sleep(self.settings.orphan_poll_seconds)
        code, message = self._outcome(run, None)
        self._finish(run, code, message)

    async def _kill(self, run: _Run) -> None:
        """SIGTERM the group, give the leader `kill_grace_seconds`, then SIGKILL the group."""
        pgid = run.pgid
        if pgid is None:
            return
        signal_group(pgid, signal.SIGTERM)
        grace = self.settings.kill_grace_seconds
        if run.process is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.process.wait(), grace)
        else:  # a process from before a restart is not our child: poll it
            for _ in range(max(1, int(grace / 0.05))):
                if not run.alive():
                    break
                await asyncio.sleep(0.05)
        signal_group(pgid, signal.SIGKILL)

    def _finish(self, run: _Run, exit_code: int, message: str | None = None) -> None:
        if message is not None:
            run.journal.append(LogSource.STDERR, message)
        run.journal.complete(exit_code)
        if run.mutex is not None:
            self.mutexes.release(run.mutex, run.ticket)
            run.mutex = None
        with contextlib.suppress(OSError):
            (self.work_dir / run.ticket / VARIABLES_FILE).unlink(missing_ok=True)
        run.done.set()
        run.touch()
        self._active.pop(run.ticket, None)
        self._remember_completed(run)
        log.info("script %s completed with exit code %d", run.ticket, exit_code)

    def _remember_completed(self, run: _Run) -> None:
        self._completed[run.ticket] = run
        self._completed.move_to_end(run.ticket)
        while len(self._completed) > self.settings.completed_cache_size:
            self._completed.popitem(last=False)

    def _status(
        self, run: _Run, after: int, *, report_undrained: bool = False
    ) -> ScriptStatusResponse:
        """State first, then logs: a Complete state is only reported with the last line.

        Completion journals every line before it records the state, so a client that polls
        until Complete never misses output, even when a page is cut at the per-call limits.
        """
        state, exit_code = run.journal.state.state, run.journal.state.exit_code
        logs = run.journal.read(
            after,
            limit=self.settings.max_logs_per_call,
            max_bytes=self.settings.max_log_bytes_per_call,
        )
        next_sequence = logs[-1].sequence if logs else after
        if (
            state is ProcessState.COMPLETE
            and not report_undrained
            and next_sequence < run.journal.last_sequence
        ):
            state, exit_code = ProcessState.RUNNING, None
        return ScriptStatusResponse(
            ticket=run.ticket,
            state=state,
            exit_code=exit_code,
            logs=logs,
            next_log_sequence=next_sequence,
        )


def _redacted(command: StartScriptCommand) -> dict[str, Any]:
    """The command as journaled: sensitive values never touch `command.json`."""
    data = command.model_dump(mode="json")
    sensitive = set(command.sensitive_variables)
    data["variables"] = {k: MASK if k in sensitive else v for k, v in command.variables.items()}
    return data
