"""The whole Cephalo stack as real processes: Postgres, NATS, five services, local agents.

Used by `make run` (fixed default ports, state in `.cephalo/`) and by the end-to-end tests
(free ports, state in a temp dir, external Postgres/NATS from the test fixtures).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from cephalo_common.db.migrations import upgrade
from cephalo_common.urls import LOOPBACK
from cephalo_dev.processes import spawn, stop


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    package: str
    prefix: str


SERVICES = (
    ServiceSpec("release-service", "cephalo_release", "RELEASE"),
    ServiceSpec("deploy-orchestrator", "cephalo_orchestrator", "ORCHESTRATOR"),
    ServiceSpec("package-feed", "cephalo_feed", "FEED"),
    ServiceSpec("agent-gateway", "cephalo_agent_gateway", "AGENT_GATEWAY"),
    ServiceSpec("api-gateway", "cephalo_gateway", "GATEWAY"),
)


@dataclass
class Ports:
    gateway: int = 8080
    release: int = 8081
    orchestrator: int = 8082
    feed: int = 8083
    agent_gateway: int = 8084
    polling: int = 10943

    def for_service(self, name: str) -> int:
        return {
            "api-gateway": self.gateway,
            "release-service": self.release,
            "deploy-orchestrator": self.orchestrator,
            "package-feed": self.feed,
            "agent-gateway": self.agent_gateway,
        }[name]


@dataclass
class Stack:
    state_dir: Path
    database_url: str
    nats_url: str
    ports: Ports = field(default_factory=Ports)
    json_logs: bool = False
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.gateway}"

    @property
    def api_key(self) -> str:
        """The administrator key the gateway registers at start (kept in the state dir, 0600)."""
        path = self.state_dir / "api-key"
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text("API-" + base64.b32encode(secrets.token_bytes(32)).decode().rstrip("="))
        return path.read_text().strip()

    @property
    def master_key_file(self) -> Path:
        """release-service's master key for sensitive variables (state dir, 0600, kept across
        restarts: values encrypted with it must stay readable)."""
        path = self.state_dir / "master-key"
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        return path

    @property
    def ssh_account_key_file(self) -> Path:
        """agent-gateway's key for SSH accounts (state dir, 0600, kept across restarts)."""
        path = self.state_dir / "ssh-account-key"
        if not path.exists():
            self.state_dir.mkdir(parents=True, exist_ok=True)
            path.touch(mode=0o600)
            path.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
        return path

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"X-Cephalo-Api-Key": self.api_key}

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports.for_service(service)}"

    def service_env(self, spec: ServiceSpec) -> dict[str, str]:
        prefix = f"CEPHALO_{spec.prefix}_"
        values = {
            "PORT": str(self.ports.for_service(spec.name)),
            "DATABASE__URL": self.database_url,
            "NATS__URL": self.nats_url,
            "LOG_JSON": "true" if self.json_logs else "false",
            "RELEASE_SERVICE_URL": self.url("release-service"),
            "ORCHESTRATOR_URL": self.url("deploy-orchestrator"),
            "PACKAGE_FEED_URL": self.url("package-feed"),
            "FEED_URL": self.url("package-feed"),
            "PACKAGE_DOWNLOAD_BASE_URL": self.gateway_url,
            "AGENT_GATEWAY_URL": self.url("agent-gateway"),
            "DATA_DIR": str(self.state_dir / spec.name),
            "STORAGE_DIR": str(self.state_dir / "packages"),
            "POLLING_PORT": str(self.ports.polling),
            "PUBLIC_POLLING_ENDPOINT": f"wss://127.0.0.1:{self.ports.polling}/poll",
            "BOOTSTRAP_API_KEY": self.api_key,
            "MASTER_KEY_FILE": str(self.master_key_file),
            "SSH_ACCOUNT_KEY_FILE": str(self.ssh_account_key_file),
            "OUTBOUND__ALLOW": json.dumps(LOOPBACK),
        }
        env = {key: value for key, value in os.environ.items() if not key.startswith("CEPHALO_")}
        env.update({prefix + key: value for key, value in values.items()})
        return env

    def migrate(self) -> None:
        for spec in SERVICES:
            upgrade(spec.package, self.database_url)

    def start_services(self) -> None:
        for spec in SERVICES:
            self.processes[spec.name] = spawn(
                [sys.executable, "-m", spec.package, "api"],
                env=self.service_env(spec),
                log_path=self.logs_dir / f"{spec.name}.log",
            )

    async def wait_ready(self, timeout: float = 90.0) -> None:
        async with httpx.AsyncClient(timeout=2.0) as client, asyncio.timeout(timeout):
            for spec in SERVICES:
                await _wait_ready(
                    client, self.url(spec.name) + "/readyz", self.processes.get(spec.name)
                )

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            stop(self.processes.pop(name))


async def _wait_ready(
    client: httpx.AsyncClient, url: str, process: subprocess.Popen[bytes] | None
) -> None:
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{url} exited with code {process.returncode}")
        try:
            if (await client.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)


@contextlib.contextmanager
def started(stack: Stack) -> Iterator[Stack]:
    """Migrate, start every service and wait until all are ready; stop them on the way out
    (what every test that needs the whole stack does)."""
    stack.migrate()
    stack.start_services()
    try:
        asyncio.run(stack.wait_ready())
        yield stack
    finally:
        stack.stop()
