"""Many SSH hosts on loopback for `bench_ssh.py`: real OpenSSH sshd processes, 16 ports each.

Every port is a separate host as far as any client can tell (a connection each, its own
key exchange and authentication, its own forked sshd), which is what a fan-out to N hosts
costs. The account is a non-root user with a plain shell (`/bin/sh`), created when the
benchmark runs as root; otherwise the current user. Host and client keys are generated per
run; `known_hosts` lists every `[127.0.0.1]:port` with the one host key.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from cephalo_common.embedded import free_port, wait_for_port

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"
BENCH_USER = "cephalo-bench"
PORTS_PER_SSHD = 16


def bench_account() -> tuple[str, Path]:
    """The user the hosts are logged into, and its home (where the runner is pushed)."""
    if os.geteuid() != 0:
        user = getpass.getuser()
        return user, Path(pwd.getpwnam(user).pw_dir)
    try:
        entry = pwd.getpwnam(BENCH_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", BENCH_USER], check=True)
        entry = pwd.getpwnam(BENCH_USER)
    # useradd leaves the password "!" (locked): sshd without PAM refuses locked accounts
    # even for key auth, "*" is "no password" and not locked.
    subprocess.run(["usermod", "--password", "*", BENCH_USER], check=True)
    return BENCH_USER, Path(entry.pw_dir)


@dataclass
class SshFarm:
    directory: Path
    hosts: int
    user: str = ""
    home: Path = Path()
    ports: list[int] = field(default_factory=list)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    client_key: asyncssh.SSHKey = field(
        default_factory=lambda: asyncssh.generate_private_key("ssh-ed25519")
    )
    host_key: asyncssh.SSHKey = field(
        default_factory=lambda: asyncssh.generate_private_key("ssh-ed25519")
    )

    @property
    def client_key_file(self) -> Path:
        return self.directory / "client_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.directory / "known_hosts"

    @property
    def host_public_key(self) -> str:
        return self.host_key.export_public_key("openssh").decode().strip()

    def start(self) -> None:
        self.user, self.home = bench_account()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.directory.chmod(0o755)  # sshd reads authorized_keys as the user
        self._write_keys()
        self.ports = [free_port() for _ in range(self.hosts)]
        for index in range(0, self.hosts, PORTS_PER_SSHD):
            self._start_sshd(index // PORTS_PER_SSHD, self.ports[index : index + PORTS_PER_SSHD])
        for port in self.ports:
            wait_for_port(port, timeout=30)

    def _write_keys(self) -> None:
        self.client_key.write_private_key(str(self.client_key_file))
        self.client_key_file.chmod(0o600)
        host_key_file = self.directory / "host_ed25519"
        self.host_key.write_private_key(str(host_key_file))
        host_key_file.chmod(0o600)
        authorized = self.directory / "authorized_keys"
        authorized.write_bytes(self.client_key.export_public_key("openssh"))
        authorized.chmod(0o644)

    def _start_sshd(self, number: int, ports: list[int]) -> None:
        config = self.directory / f"sshd_config.{number}"
        config.write_text(
            "".join(f"Port {port}\n" for port in ports)
            + f"ListenAddress 127.0.0.1\nHostKey {self.directory}/host_ed25519\n"
            f"PidFile {self.directory}/sshd.{number}.pid\n"
            f"AuthorizedKeysFile {self.directory}/authorized_keys\n"
            "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nMaxStartups 400:30:800\n"
            "Subsystem sftp internal-sftp\nLogLevel ERROR\n"
        )
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        log = (self.directory / f"sshd.{number}.log").open("ab")
        self.processes.append(
            subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log)
        )

    def write_known_hosts(self) -> None:
        key = self.host_public_key
        self.known_hosts.write_text("".join(f"[127.0.0.1]:{port} {key}\n" for port in self.ports))

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
