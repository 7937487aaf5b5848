"""The agent's data directory and its `config.json`.

Everything the agent knows lives in one directory so that it can be backed up, moved or wiped
as a unit: its own identity (certificate and 0600 key), the registration and the pinned server
certificate, the ticket journal and the scripts' working directories.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from cephalo_common.security.tls import CERT_FILE, KEY_FILE

HOME_ENV = "CEPHALO_AGENT_HOME"
DEFAULT_HOME = "~/.cephalo-agent"
CONFIG_FILE = "config.json"
SERVER_CERT_FILE = "server-certificate.pem"
TICKETS_DIR = "tickets"
WORK_DIR = "work"
FILES_DIR = "files"
STREAMS_DIR = "streams"


class NotRegistered(RuntimeError):
    """`run` before `register`: there is no endpoint or pinned server certificate yet."""


class AgentConfig(BaseModel):
    """What `config.json` holds; unknown keys are ignored so an older agent can read a newer file."""

    model_config = ConfigDict(extra="ignore")

    server_url: str | None = None
    space: str | None = None
    machine_id: str | None = None
    machine_name: str | None = None
    server_thumbprint: str | None = None
    mode: Literal["polling", "listening"] | None = None
    polling_endpoint: str | None = None
    # Listening mode: where the server dials (`listening_url`) and what this agent binds.
    listening_url: str | None = None
    listen_host: str = "0.0.0.0"
    listen_port: int | None = None
    # "target" (deployment target, in environments) or "worker" (in worker pools).
    kind: Literal["target", "worker"] = "target"

    @property
    def registered(self) -> bool:
        return self.machine_id is not None


@dataclass(frozen=True)
class AgentPaths:
    """Where each piece of agent state lives inside the data directory."""

    root: Path

    @property
    def certificate(self) -> Path:
        return self.root / CERT_FILE

    @property
    def private_key(self) -> Path:
        return self.root / KEY_FILE

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def server_certificate(self) -> Path:
        return self.root / SERVER_CERT_FILE

    @property
    def tickets(self) -> Path:
        return self.root / TICKETS_DIR

    @property
    def work(self) -> Path:
        return self.root / WORK_DIR

    @property
    def files(self) -> Path:
        return self.root / FILES_DIR

    @property
    def streams(self) -> Path:
        return self.root / STREAMS_DIR

    def ensure(self) -> None:
        """Create the directory tree, private to the agent's user (it holds keys and secrets)."""
        for directory in (self.root, self.tickets, self.work):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.root.chmod(0o700)


def resolve_home(data_dir: str | os.PathLike[str] | None = None) -> AgentPaths:
    """`--data-dir` wins over `$CEPHALO_AGENT_HOME`, which wins over `~/.cephalo-agent`."""
    chosen = data_dir or os.environ.get(HOME_ENV) or DEFAULT_HOME
    return AgentPaths(Path(chosen).expanduser().resolve())


def atomic_write(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Write via a temporary file in the same directory and rename, so readers never see half.

    The data is fsynced before the rename; a crash leaves either the old or the new content.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    fsync_directory(path.parent)


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new entry in `directory` survive a power cut (best effort)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_config(paths: AgentPaths) -> AgentConfig:
    """The saved configuration, or an empty one before the first `configure`/`register`."""
    try:
        return AgentConfig.model_validate_json(paths.config.read_bytes())
    except FileNotFoundError:
        return AgentConfig()


def save_config(paths: AgentPaths, config: AgentConfig) -> None:
    paths.ensure()
    atomic_write(paths.config, config.model_dump_json(indent=2).encode() + b"\n")


def load_server_certificate(paths: AgentPaths) -> str | None:
    try:
        return paths.server_certificate.read_text()
    except FileNotFoundError:
        return None
