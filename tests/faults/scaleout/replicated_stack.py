"""Two replicas of every Cephalo service as real processes, behind loopback round-robin proxies.

Shaped like the Helm chart: one PostgreSQL and one NATS, migrations run once beforehand (the
hook Job), every replica of a service reached through one proxy port (its Service), the
replicas share the state a Secret or volume would hold (API key, master key, the
agent-gateway's identity, the package directory).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from loopback_proxy import RoundRobinProxy

from cephalo_agent_gateway.identity import load_server_identity
from cephalo_common.embedded import free_port
from cephalo_dev.processes import spawn, stop
from cephalo_dev.stack import SERVICES, Ports, ServiceSpec, Stack

REPLICAS = ("a", "b")
# Each service reads the keys it knows (pydantic settings ignore the rest). The orchestrator's
# task lease and sweep are short too: at their defaults (30 s, 10 s) the tasks the killed
# replica held waited up to 40 s to be adopted, most of the test's idle time.
FAST = {
    "MESSAGING__OUTBOX_POLL_SECONDS": "0.2",
    "MESSAGING__CONSUMER_ACK_WAIT_SECONDS": "10",
    "TASK_POLL_SECONDS": "0.2",
    "RUN_LEASE_SECONDS": "6",
    "RUN_HEARTBEAT_SECONDS": "1",
    "LEASE_SECONDS": "6",
    "SWEEP_SECONDS": "1",
    "PICKUP_TIMEOUT_SECONDS": "60",
    "STEP_START_RETRY_SECONDS": "60",
}


@dataclass
class Replica:
    spec: ServiceSpec
    name: str
    port: int
    polling_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def label(self) -> str:
        return f"{self.spec.name}-{self.name}"


@dataclass
class ReplicatedStack(Stack):
    """`ports` are the proxies' (what clients and the other services dial)."""

    replicas: list[Replica] = field(default_factory=list)
    proxies: dict[str, RoundRobinProxy] = field(default_factory=dict)

    @classmethod
    async def create(cls, state_dir: Path, database_url: str, nats_url: str) -> ReplicatedStack:
        replicas = [
            Replica(spec, name, free_port(), free_port()) for name in REPLICAS for spec in SERVICES
        ]
        proxies = {
            spec.name: await RoundRobinProxy([r.port for r in replicas if r.spec is spec]).start()
            for spec in SERVICES
        }
        proxies["polling"] = await RoundRobinProxy(
            [r.polling_port for r in replicas if r.spec.name == "agent-gateway"]
        ).start()
        ports = Ports(
            gateway=proxies["api-gateway"].port,
            release=proxies["release-service"].port,
            orchestrator=proxies["deploy-orchestrator"].port,
            feed=proxies["package-feed"].port,
            agent_gateway=proxies["agent-gateway"].port,
            polling=proxies["polling"].port,
        )
        stack = cls(state_dir, database_url, nats_url, ports, json_logs=True)
        stack.replicas, stack.proxies = replicas, proxies
        stack._share_gateway_identity()
        return stack

    def _share_gateway_identity(self) -> None:
        """Every agent-gateway replica serves the one certificate agents pin (a Secret)."""
        source = self.state_dir / "agent-gateway-identity"
        load_server_identity(source)
        for name in REPLICAS:
            shutil.copytree(source, self.state_dir / f"agent-gateway-{name}", dirs_exist_ok=True)

    def replica_env(self, replica: Replica) -> dict[str, str]:
        env = self.service_env(replica.spec)
        prefix = f"CEPHALO_{replica.spec.prefix}_"
        env[prefix + "PORT"] = str(replica.port)
        env[prefix + "POLLING_PORT"] = str(replica.polling_port)
        env[prefix + "DATA_DIR"] = str(self.state_dir / f"{replica.spec.name}-{replica.name}")
        env.update({prefix + key: value for key, value in FAST.items()})
        return env

    def log_path(self, replica: Replica) -> Path:
        return self.logs_dir / f"{replica.label}.log"

    async def start_replicas(self, timeout: float = 240.0) -> None:
        """Every replica at once, as a fresh install starts its pods: first starts that seed
        shared rows (the default space, the bootstrap API key) race each other."""
        for replica in self.replicas:
            replica.process = spawn(
                [sys.executable, "-m", replica.spec.package, "api"],
                env=self.replica_env(replica),
                log_path=self.log_path(replica),
            )
        async with httpx.AsyncClient(timeout=3.0) as client, asyncio.timeout(timeout):
            await asyncio.gather(*(_ready(client, r) for r in self.replicas))

    def kill(self, name: str) -> None:
        for replica in self.replicas:
            if replica.name == name and replica.process is not None:
                replica.process.kill()
                replica.process.wait()

    async def aclose(self) -> None:
        await asyncio.to_thread(self._stop_all)
        for proxy in self.proxies.values():
            await proxy.close()

    def _stop_all(self) -> None:
        for replica in reversed(self.replicas):
            if replica.process is not None:
                stop(replica.process)

    def logged_events(self, replica: Replica, event: str) -> list[dict[str, Any]]:
        import json

        found = []
        for line in self.log_path(replica).read_text().splitlines():
            if event in line and line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == event:
                    found.append(record)
        return found


async def _ready(client: httpx.AsyncClient, replica: Replica) -> None:
    url = f"http://127.0.0.1:{replica.port}/readyz"
    while True:
        assert replica.process is not None
        if replica.process.poll() is not None:
            raise RuntimeError(f"{replica.label} exited with code {replica.process.returncode}")
        try:
            if (await client.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.3)
