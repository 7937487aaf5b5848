"""An agent swarm: N real agents in one process, for benchmarks and scale tests.

Each agent has its own certificate (its identity), its own data directory, ticket journal
and ScriptService, and speaks the real protocol over real mutual TLS: registration with the
real `register()`, then the real `PollingClient` (dialling the gateway) or `ListeningServer`
(dialled by it). Only the process is shared.

    swarm = Swarm(root, server_url, space_id)
    await swarm.add(1000, mode="polling")
    await swarm.start()
    await swarm.wait_connected()
    ...
    await swarm.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cephalo_agent.config import AgentPaths
from cephalo_agent.listening import ListeningSettings
from cephalo_agent.polling import PollingSettings
from cephalo_agent.registration import RegistrationError, register
from cephalo_agent.runner import Agent, AgentSettings, build_agent
from cephalo_agent.scripts import ScriptSettings

REGISTER_ATTEMPTS = 3
SWARM_SETTINGS = AgentSettings(
    # A swarm connects all at once: give handshakes queued behind the others time to finish.
    polling=PollingSettings(
        initial_backoff_seconds=0.2, max_backoff_seconds=5.0, open_timeout_seconds=120.0
    ),
    listening=ListeningSettings(),
    scripts=ScriptSettings(drain_seconds=0.5),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class SwarmAgent:
    name: str
    paths: AgentPaths
    agent: Agent
    task: asyncio.Task[None] | None = None

    @property
    def machine_id(self) -> str:
        assert self.agent.config.machine_id is not None
        return self.agent.config.machine_id

    @property
    def connected(self) -> bool:
        if self.agent.polling is not None:
            return self.agent.polling.connected.is_set()
        return self.task is not None and not self.task.done()


@dataclass
class Swarm:
    root: Path
    server_url: str
    space_id: str
    environments: list[str] = field(default_factory=lambda: ["Production"])
    roles: list[str] = field(default_factory=lambda: ["swarm"])
    settings: AgentSettings = SWARM_SETTINGS
    polling_endpoint: str | None = None  # dial this instead of what registration returned
    agents: list[SwarmAgent] = field(default_factory=list)

    async def add(
        self, count: int, *, mode: str = "polling", concurrency: int = 16, prefix: str = "swarm"
    ) -> list[SwarmAgent]:
        """Create certificates and register `count` agents (`concurrency` at a time)."""
        slots = asyncio.Semaphore(concurrency)
        start = len(self.agents)

        async def one(index: int) -> SwarmAgent:
            async with slots:
                return await asyncio.to_thread(self._register, f"{prefix}-{index:05d}", mode)

        added = await asyncio.gather(*(one(start + n) for n in range(count)))
        self.agents.extend(added)
        return list(added)

    def _register(self, name: str, mode: str) -> SwarmAgent:
        paths = AgentPaths(self.root / name)
        options: dict[str, Any] = {}
        if mode == "listening":
            options = {
                "listening_url": f"https://127.0.0.1:{free_port()}",
                "listen_host": "127.0.0.1",
            }
        for attempt in range(REGISTER_ATTEMPTS):
            try:
                register(
                    paths,
                    server_url=self.server_url,
                    space=self.space_id,
                    name=name,
                    environments=self.environments,
                    roles=self.roles,
                    mode=mode,
                    **options,
                )
                break
            except RegistrationError as error:  # a busy box: the gateway may answer 503
                if "HTTP 503" not in str(error) or attempt == REGISTER_ATTEMPTS - 1:
                    raise
                time.sleep(1.0)
        if self.polling_endpoint is not None and mode == "polling":
            from cephalo_agent.config import load_config, save_config

            config = load_config(paths).model_copy(
                update={"polling_endpoint": self.polling_endpoint}
            )
            save_config(paths, config)
        return SwarmAgent(name, paths, build_agent(paths, self.settings))

    async def start(self, agents: list[SwarmAgent] | None = None) -> None:
        for member in agents if agents is not None else self.agents:
            if member.task is None:
                member.task = asyncio.create_task(member.agent.serve(), name=member.name)

    async def wait_connected(
        self, agents: list[SwarmAgent] | None = None, timeout: float = 300.0
    ) -> None:
        """Until every polling agent holds a verified connection (listening: is bound)."""
        members = agents if agents is not None else self.agents
        async with asyncio.timeout(timeout):
            for member in members:
                if member.agent.polling is not None:
                    await member.agent.polling.connected.wait()
                else:
                    assert member.agent.listening is not None
                    while member.agent.listening._server is None:
                        await asyncio.sleep(0.01)

    def connected_count(self) -> int:
        return sum(1 for member in self.agents if member.connected)

    async def stop(self) -> None:
        tasks = [member.task for member in self.agents if member.task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for member in self.agents:
            with contextlib.suppress(Exception):
                await member.agent.aclose()
            member.task = None
