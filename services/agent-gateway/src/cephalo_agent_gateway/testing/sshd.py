"""A real OpenSSH `sshd` on 127.0.0.1 for tests: key-only auth as the current user.

`.ci/run`/`make test` install openssh-server when it is missing. The daemon uses its own
config, host key and authorized_keys in a temporary directory; `restart` with another host
key simulates a re-installed host.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import asyncssh
import pytest

from cephalo_common.embedded import free_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def write_key(path: Path, key: asyncssh.SSHKey) -> None:
    key.write_private_key(str(path))
    path.chmod(0o600)


@dataclass
class Sshd:
    port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self, host_key: Path) -> None:
        config = self.directory / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"PidFile {self.directory}/sshd.pid\n"
            f"AuthorizedKeysFile {self.directory}/authorized_keys\n"
            "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nMaxStartups 100:30:200\n"
            "Subsystem sftp internal-sftp\nLogLevel ERROR\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        self.process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)])

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    async def restart_with_new_host_key(self) -> None:
        """The host is re-installed: same address, another host key."""
        self.stop()
        host_key = self.directory / "host_ed25519_new"
        write_key(host_key, asyncssh.generate_private_key("ssh-ed25519"))
        self.start(host_key)
        await listening(self.port)


async def listening(port: int) -> None:
    async with asyncio.timeout(20):
        while True:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.05)
                continue
            writer.close()
            return


@pytest.fixture
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture
async def sshd(tmp_path: Path, client_key: asyncssh.SSHKey) -> AsyncIterator[Sshd]:
    if not os.path.exists(SSHD):
        pytest.fail("sshd is missing: `make test` installs openssh-server")
    directory = tmp_path / "sshd"
    directory.mkdir()
    (directory / "authorized_keys").write_bytes(client_key.export_public_key("openssh"))
    host_key = directory / "host_ed25519"
    write_key(host_key, asyncssh.generate_private_key("ssh-ed25519"))
    server = Sshd(free_port(), directory)
    server.start(host_key)
    await listening(server.port)
    yield server
    server.stop()


@pytest.fixture
def package_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Serves a directory over HTTP on 127.0.0.1, as the feed's signed URLs are served."""
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(SimpleHTTPRequestHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()
    server.server_close()
