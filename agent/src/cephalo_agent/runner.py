"""`cephalo-agent run`: recover the journal, then poll or listen until SIGTERM/SIGINT.

Scripts are not killed on the way out; their journals say Running, and the next start adopts
them if they are still alive or records their outcome as unknown (-2).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cephalo_agent.config import (
    AgentConfig,
    AgentPaths,
    NotRegistered,
    load_config,
    load_server_certificate,
)
from cephalo_agent.files import FileTransferService, StreamStore
from cephalo_agent.listening import ListeningServer, ListeningSettings
from cephalo_agent.polling import PollingClient, PollingSettings
from cephalo_agent.registration import introduce
from cephalo_agent.scripts import ScriptService, ScriptSettings
from cephalo_agent.service import AgentService
from cephalo_common.agent_protocol import DEFAULT_LISTENING_PORT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AgentSettings:
    polling: PollingSettings | None = None
    listening: ListeningSettings | None = None
    scripts: ScriptSettings | None = None


@dataclass
class Agent:
    """One agent's services and its transport, built from its data directory."""

    paths: AgentPaths
    config: AgentConfig
    scripts: ScriptService
    service: AgentService
    polling: PollingClient | None = None
    listening: ListeningServer | None = None

    async def serve(self) -> None:
        """Run the transport until cancelled (listening: bind first)."""
        if self.listening is not None:
            await self.listening.start()
            await self.listening.serve_forever()
        else:
            assert self.polling is not None
            await self.polling.run_forever()

    async def aclose(self) -> None:
        if self.polling is not None:
            await self.polling.aclose()
        if self.listening is not None:
            await self.listening.aclose()
        await self.scripts.aclose()


def build_agent(paths: AgentPaths, settings: AgentSettings | None = None) -> Agent:
    """The registered agent of `paths`, in the mode it registered with."""
    settings = settings or AgentSettings()
    config = load_config(paths)
    if not config.registered:
        raise NotRegistered("this agent is not registered; run `register` first")
    scripts = ScriptService.for_paths(paths, settings.scripts)
    streams = StreamStore(paths.streams)
    service = AgentService(scripts, files=FileTransferService(paths.files, streams, paths.work))
    agent = Agent(paths, config, scripts, service)
    if config.mode == "listening":
        server_pem = load_server_certificate(paths)
        if server_pem is None or config.server_thumbprint is None:
            raise NotRegistered(
                f"no pinned server certificate in {paths.server_certificate}; register again"
            )
        agent.listening = ListeningServer(
            config.listen_host,
            config.listen_port or DEFAULT_LISTENING_PORT,
            certificate=paths.certificate,
            private_key=paths.private_key,
            server_certificate_pem=server_pem,
            server_thumbprint=config.server_thumbprint,
            service=service,
            streams=streams,
            settings=settings.listening,
        )
    else:
        agent.polling = PollingClient.from_config(
            paths,
            config,
            service,
            settings.polling,
            streams=streams,
            introduce=functools.partial(introduce, paths, config),
        )
    return agent


async def run_agent(paths: AgentPaths, settings: AgentSettings | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then just exit (scripts keep running, journaled)."""
    agent = build_agent(paths, settings)
    recovered = await agent.scripts.recover()
    if recovered:
        log.info("recovered %d unfinished ticket(s) from the journal", len(recovered))
    config = agent.config
    where = config.listening_url if config.mode == "listening" else config.polling_endpoint
    log.info("agent %s (%s) %s %s", config.machine_name, config.machine_id, config.mode, where)
    await _until_signalled(agent.serve)
    await agent.aclose()
    log.info("agent stopped")


async def _until_signalled(main: Callable[[], Awaitable[None]]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    for signum in signals:
        loop.add_signal_handler(signum, stop.set)
    runner = asyncio.ensure_future(main())
    stopper = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (runner, stopper):
            task.cancel()
        await asyncio.gather(runner, stopper, return_exceptions=True)
        for signum in signals:
            loop.remove_signal_handler(signum)
    if runner in done:
        runner.result()  # serving only ends by raising; surface it
