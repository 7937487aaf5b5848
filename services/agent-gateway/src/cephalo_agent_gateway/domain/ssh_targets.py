"""SSH targets: the step runner pushed over SFTP and run non-interactively, host key pinned.

- The host key is captured once (`capture_host_key`) when the target is registered and
  pinned: every connection trusts exactly that key and no other, so a changed key refuses
  the connection (`HostKeyChanged`, with both fingerprints) and is reported to
  `on_host_key_changed` for the audit trail. Disabled host-key checking is never used.
- One pooled connection per target and account, shared by concurrent steps; at most
  `max_concurrent` sessions at a time across the pool (the gateway's limit, 200 by
  default: a wide fan-out is not held at a few hosts in flight). Key exchange: curve25519.
- The runner bundle lives at `<remote_base>/runner/<version>/runner.pyz` and is uploaded
  only when that file is missing (the version is a hash of its sources).
- A plain shell script step takes the fast path (`ssh_fastpath`): one exec, no runner, no
  Python on the host unless the script asks for a variable. Any other step runs the runner.
- A step is one exec channel, no SFTP: the action (or the fast path's step program) goes up
  on stdin into a 0600 file the runner deletes once read, so sensitive values are never on a
  command line. No PTY is requested; the runner's stdin is at its end.
- Closing a channel does not stop what runs behind it (no PTY, no SIGHUP), so the runner is
  `exec`ed by the session's shell, which sshd made a process group leader, and announces that
  group first: a cancelled or timed-out step gets SIGTERM then SIGKILL sent to the group.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import posixpath
import re
import secrets
import shlex
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import asyncssh
from asyncssh.kex import get_default_kex_algs

from cephalo_agent.steprunner.bundle import build_bundle
from cephalo_agent.steprunner.errors import StepFailed
from cephalo_agent_gateway.domain.ssh_accounts import SshAccount
from cephalo_agent_gateway.domain.ssh_fastpath import (
    RAN_BEFORE,
    FastStep,
    LineSink,
    fast_command,
    fast_path_refusal,
    recorded_exit_code_command,
)
from cephalo_common.agent_protocol import LogSource
from cephalo_common.logging import get_logger

_TICKET = re.compile(r"^[A-Za-z0-9._-]{1,200}$")
MIN_PYTHON = (3, 11)
log = get_logger(__name__)
PROCESS_GROUP_MARKER = "##cephalo-process-group "
RUNNER_MISSING = "##cephalo-runner-missing"
KILL_GRACE_SECONDS = 3
# curve25519 first: the cheapest exchange both sides offer (asyncssh would pick a
# post-quantum hybrid with an OpenSSH >= 9.9); the rest of asyncssh's list stays a fallback.
KEX_ALGORITHMS = [
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    *(
        name.decode()
        for name in get_default_kex_algs()
        if not name.startswith((b"curve25519", b"gss-"))
    ),
]


class SshUnavailable(Exception):
    """The target cannot be reached or refused us; the message says why."""


class HostKeyChanged(SshUnavailable):
    pass


class AlreadyRan(SshUnavailable):
    """The ticket's step started on this target before: it is never run twice."""


@dataclass(frozen=True)
class SshEndpoint:
    name: str
    host: str
    port: int
    account: SshAccount
    host_key: str  # the pinned key, OpenSSH public key format
    machine_id: str | None = None  # the registered machine, for the audit trail

    @property
    def pool_key(self) -> tuple[str, int, str, str]:
        """Connections are shared only by the same host, pinned key and credentials."""
        account = self.account
        secret = f"{account.username}\0{account.password}\0{account.private_key}"
        return (self.host, self.port, hashlib.sha256(secret.encode()).hexdigest(), self.host_key)


@dataclass(frozen=True)
class SshSettings:
    max_concurrent: int = 200
    connect_timeout_seconds: float = 15.0
    run_timeout_seconds: float = 3600.0
    remote_base: str = ".cephalo"
    python: str = "python3"
    shell_fast_path: bool = True


@dataclass(frozen=True)
class SshHealth:
    healthy: bool
    message: str
    python_version: str | None = None


HostKeyListener = Callable[[SshEndpoint, str], Awaitable[None]]


def fingerprint(public_key: str) -> str:
    return str(asyncssh.import_public_key(public_key).get_fingerprint("sha256"))


def same_fingerprint(given: str, actual: str) -> bool:
    """`SHA256:abc…` as OpenSSH prints it; the prefix and the base64 padding are optional."""

    def bare(value: str) -> str:
        value = value.strip()
        if value[:7].upper() == "SHA256:":
            value = value[7:]
        return value.rstrip("=")

    return bool(bare(given)) and bare(given) == bare(actual)


def check_private_key(private_key: str, passphrase: str | None) -> None:
    """Raise ValueError when the key does not parse (or the passphrase does not open it)."""
    try:
        asyncssh.import_private_key(private_key, passphrase)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as error:
        raise ValueError(f"the private key cannot be read: {error}") from None


async def capture_host_key(host: str, port: int, timeout: float = 15.0) -> str:
    """The key the host presents now, to pin at registration (OpenSSH public format)."""
    try:
        async with asyncio.timeout(timeout):
            key = await asyncssh.get_server_host_key(host, port)
    except (OSError, asyncssh.Error, TimeoutError) as error:
        raise SshUnavailable(f"cannot read the host key of {host}:{port}: {error}") from None
    if key is None:
        raise SshUnavailable(f"{host}:{port} presented no host key")
    return key.export_public_key("openssh").decode().strip()


@lru_cache(maxsize=1)
def runner_bundle() -> tuple[str, bytes]:
    return build_bundle()


@dataclass
class SshConnections:
    """The pool: one connection per endpoint, a session limit across all of them."""

    settings: SshSettings = field(default_factory=SshSettings)
    on_host_key_changed: HostKeyListener | None = None
    peak_sessions: int = 0
    runner_uploads: int = 0

    def __post_init__(self) -> None:
        self._limit = asyncio.Semaphore(self.settings.max_concurrent)
        self._connections: dict[tuple[str, int, str, str], asyncssh.SSHClientConnection] = {}
        self._connecting: dict[tuple[str, int, str, str], asyncio.Lock] = {}
        self._active = 0

    @asynccontextmanager
    async def session(self, endpoint: SshEndpoint) -> AsyncIterator[asyncssh.SSHClientConnection]:
        async with self._limit:
            self._active += 1
            self.peak_sessions = max(self.peak_sessions, self._active)
            try:
                connection = await self._connection(endpoint)
                try:
                    yield connection
                except (OSError, asyncssh.Error):
                    self._drop(endpoint)
                    raise
            finally:
                self._active -= 1

    async def _connection(self, endpoint: SshEndpoint) -> asyncssh.SSHClientConnection:
        key = endpoint.pool_key
        lock = self._connecting.setdefault(key, asyncio.Lock())
        async with lock:
            existing = self._connections.get(key)
            if existing is not None and not existing.is_closed():
                return existing
            connection = await self._connect(endpoint)
            self._connections[key] = connection
            return connection

    async def _connect(self, endpoint: SshEndpoint) -> asyncssh.SSHClientConnection:
        account = endpoint.account
        pinned = asyncssh.import_public_key(endpoint.host_key)
        options: dict[str, Any] = {
            "username": account.username,
            "known_hosts": ([pinned], [], []),
            "client_keys": None,
            "agent_path": None,
            "password": account.password,
            "connect_timeout": self.settings.connect_timeout_seconds,
            "kex_algs": KEX_ALGORITHMS,
        }
        if account.private_key is not None:
            options["client_keys"] = [
                asyncssh.import_private_key(account.private_key, account.passphrase)
            ]
        try:
            return await asyncssh.connect(endpoint.host, endpoint.port, **options)
        except asyncssh.HostKeyNotVerifiable:
            raise await self._changed(endpoint) from None
        except asyncssh.PermissionDenied:
            raise SshUnavailable(
                f"SSH target {endpoint.name}: {account.username} was refused (check the account)"
            ) from None
        except (OSError, asyncssh.Error, TimeoutError) as error:
            raise SshUnavailable(f"SSH target {endpoint.name} is unreachable: {error}") from None

    async def _changed(self, endpoint: SshEndpoint) -> HostKeyChanged:
        try:
            presented = await capture_host_key(endpoint.host, endpoint.port)
            now = fingerprint(presented)
        except SshUnavailable:
            presented, now = "", "unknown"
        if self.on_host_key_changed is not None:
            await self.on_host_key_changed(endpoint, presented)
        return HostKeyChanged(
            f"SSH target {endpoint.name} ({endpoint.host}:{endpoint.port}) presented a different "
            f"host key ({now}) from the pinned one ({fingerprint(endpoint.host_key)}); the "
            "connection was refused. If the change is expected, capture the host key again."
        )

    def _drop(self, endpoint: SshEndpoint) -> None:
        connection = self._connections.pop(endpoint.pool_key, None)
        if connection is not None:
            connection.close()

    async def aclose(self) -> None:
        connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            connection.close()
        for connection in connections:
            await connection.wait_closed()


START_REFUSALS = (RUNNER_MISSING, RAN_BEFORE)


@dataclass
class _Ended:
    status: int = -1
    marker: str | None = None
    after_marker: list[str] = field(default_factory=list)


@dataclass
class SshStepRunner:
    """Runs one action on an SSH target through the pushed step runner."""

    pool: SshConnections

    @property
    def base(self) -> str:
        return self.pool.settings.remote_base.rstrip("/")

    async def run_action(
        self, endpoint: SshEndpoint, ticket: str, action: dict[str, Any], on_line: LineSink
    ) -> int:
        """The step's exit code; every output line is handed to `on_line` as it arrives.

        A plain shell script takes the fast path (`ssh_fastpath`); any other step runs
        through the runner."""
        if not _TICKET.match(ticket):
            raise ValueError(f"ticket {ticket!r} is not a safe file name")
        if self.pool.settings.shell_fast_path and fast_path_refusal(action) is None:
            return await self._run_fast(endpoint, ticket, action, on_line)
        return await self._run_with_runner(endpoint, ticket, action, on_line)

    def work_dir(self, ticket: str) -> str:
        return f"{self.base}/work/{ticket}"

    async def _run_fast(
        self, endpoint: SshEndpoint, ticket: str, action: dict[str, Any], on_line: LineSink
    ) -> int:
        """One exec: the session's shell evaluates the step program sent on stdin."""
        work = self.work_dir(ticket)
        step = FastStep(action, work, on_line)
        try:
            program = step.program(self.pool.settings.python)
        except StepFailed as failure:
            return step.refused(failure)
        async with self.pool.session(endpoint) as connection:
            ended = await self._stream(connection, fast_command(work), program, step)
        if ended.marker == RAN_BEFORE:
            recorded = ended.after_marker[0] if ended.after_marker else "none recorded"
            raise AlreadyRan(
                f"SSH target {endpoint.name}: the step {ticket} was started there before "
                f"(exit code: {recorded}); it is not run twice"
            )
        return step.finish(ended.status)

    async def recorded_exit_code(self, endpoint: SshEndpoint, ticket: str) -> int | None:
        """What a fast step's script exited with, when the target recorded it."""
        if not _TICKET.match(ticket):
            raise ValueError(f"ticket {ticket!r} is not a safe file name")
        command = recorded_exit_code_command(self.work_dir(ticket))
        async with self.pool.session(endpoint) as connection:
            async with asyncio.timeout(self.pool.settings.connect_timeout_seconds):
                result = await connection.run(command, check=False)
        text = str(result.stdout or "").strip()
        return int(text) if text.lstrip("-").isdigit() else None

    async def _run_with_runner(
        self, endpoint: SshEndpoint, ticket: str, action: dict[str, Any], on_line: LineSink
    ) -> int:
        """One exec channel per step: the shell checks the runner is there, writes the action
        (from stdin, 0600 in a 0700 directory) and `exec`s the runner. Only when the runner
        is missing does an SFTP session push it, and the step is started again."""
        work = self.work_dir(ticket)
        spec = json.dumps({**action, "home": self.base, "work_dir": work})
        version, _ = runner_bundle()
        runner = f"{self.base}/runner/{version}/runner.pyz"
        command = self._command(runner, work)
        async with self.pool.session(endpoint) as connection:
            ended = await self._stream(connection, command, spec, on_line)
            if ended.marker == RUNNER_MISSING:
                await self._push_runner(connection, runner)
                ended = await self._stream(connection, command, spec, on_line)
        if ended.marker == RUNNER_MISSING:
            raise SshUnavailable(f"SSH target {endpoint.name}: the runner could not be pushed")
        return ended.status

    def _command(self, runner: str, work: str) -> str:
        action_path = f"{work}/action.json"
        quoted_work, quoted_action = shlex.quote(work), shlex.quote(action_path)
        run = " ".join(
            shlex.quote(part)
            for part in (self.pool.settings.python, "-u", runner, "--action", action_path)
        )
        return (
            f"test -r {shlex.quote(runner)} || {{ echo '{RUNNER_MISSING}'; exit 0; }}; "
            f"(umask 077 && mkdir -p {quoted_work} && chmod 700 {quoted_work} "
            f"&& cat > {quoted_action}) || exit 2; "
            f"echo '{PROCESS_GROUP_MARKER}'$$; exec {run} --consume"
        )

    async def _stream(
        self,
        connection: asyncssh.SSHClientConnection,
        command: str,
        stdin: str,
        on_line: LineSink,
    ) -> _Ended:
        group: list[int] = []
        async with asyncio.timeout(self.pool.settings.run_timeout_seconds):
            process = await connection.create_process(command, encoding="utf-8", errors="replace")
            try:
                return await self._follow(process, stdin, on_line, group)
            except BaseException:
                if group:
                    await self._kill_group(connection, group[0])
                process.close()  # a timed-out or cancelled step gives its session back
                raise

    async def _kill_group(self, connection: asyncssh.SSHClientConnection, group: int) -> None:
        """SIGTERM to the step's process group, SIGKILL to what is left after a grace period;
        the session does not wait for the grace period."""
        command = (
            f"(kill -TERM -- -{group}; sleep {KILL_GRACE_SECONDS}; kill -KILL -- -{group})"
            " >/dev/null 2>&1 </dev/null &"
        )
        try:
            async with asyncio.timeout(self.pool.settings.connect_timeout_seconds):
                await connection.run(command, check=False)
        except (OSError, asyncssh.Error, TimeoutError) as error:
            log.warning("could not stop an SSH step's processes", group=group, error=str(error))

    async def _follow(
        self,
        process: asyncssh.SSHClientProcess[str],
        stdin: str,
        on_line: LineSink,
        group: list[int],
    ) -> _Ended:
        """Lines go to `on_line`, except the markers the command prints before the step:
        its process group, or a reason it did not start (`marker`, then `after_marker`)."""
        with contextlib.suppress(BrokenPipeError, ConnectionError):  # it exited already
            process.stdin.write(stdin)
            process.stdin.write_eof()
        ended = _Ended()

        async def pump(reader: asyncssh.SSHReader[str], source: LogSource) -> None:
            async for line in reader:
                if not line:  # EOF
                    break
                text = line.rstrip("\r\n")
                if ended.marker is not None:
                    ended.after_marker.append(text)
                    continue
                first = not group and source is LogSource.STDOUT
                if first and text.startswith(PROCESS_GROUP_MARKER):
                    group.append(int(text.removeprefix(PROCESS_GROUP_MARKER)))
                    continue
                if first and text in START_REFUSALS:
                    ended.marker = text
                    continue
                on_line(source, text)

        await asyncio.gather(
            pump(process.stdout, LogSource.STDOUT), pump(process.stderr, LogSource.STDERR)
        )
        completed = await process.wait()
        status = completed.exit_status
        ended.status = status if status is not None else -1
        return ended

    async def fetch(self, endpoint: SshEndpoint, path: str, limit: int) -> bytes:
        """A file the step left on the target (an artifact), at most `limit` bytes."""
        async with (
            self.pool.session(endpoint) as connection,
            connection.start_sftp_client() as sftp,
        ):
            size = (await sftp.stat(path)).size or 0
            if size > limit:
                raise ValueError(f"{path} is {size} bytes, over the {limit}-byte limit")
            async with sftp.open(path, "rb") as handle:
                data: bytes = await handle.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"{path} grew over the {limit}-byte limit while it was read")
        return data

    async def _push_runner(self, connection: asyncssh.SSHClientConnection, path: str) -> None:
        _, bundle = runner_bundle()
        async with connection.start_sftp_client() as sftp:
            if await sftp.exists(path):
                return  # a concurrent step pushed it meanwhile
            await sftp.makedirs(posixpath.dirname(path), exist_ok=True)
            partial = f"{path}.partial-{secrets.token_hex(6)}"  # steps may push at once
            async with sftp.open(partial, "wb") as handle:
                await handle.write(bundle)
            await sftp.posix_rename(partial, path)
        self.pool.runner_uploads += 1

    async def health(self, endpoint: SshEndpoint) -> SshHealth:
        """Reachable, the pinned key, a usable Python: what a step needs on this target."""
        probe = "import sys; print('%d.%d.%d' % sys.version_info[:3])"
        command = f"{shlex.quote(self.pool.settings.python)} -c {shlex.quote(probe)}"
        try:
            async with self.pool.session(endpoint) as connection:
                async with asyncio.timeout(self.pool.settings.connect_timeout_seconds):
                    result = await connection.run(command, check=False)
        except (SshUnavailable, OSError, asyncssh.Error, TimeoutError) as error:
            return SshHealth(False, str(error))
        if result.exit_status != 0:
            return SshHealth(False, f"{self.pool.settings.python} is not usable on the target")
        version = str(result.stdout).strip()
        numbers = tuple(int(part) for part in version.split(".")[:2])
        if numbers < MIN_PYTHON:
            return SshHealth(False, f"Python {version} is too old; the runner needs 3.11+", version)
        return SshHealth(True, f"Python {version}", version)
