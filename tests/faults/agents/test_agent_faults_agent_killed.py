"""The agent process is SIGKILLed mid-script and restarted: nothing is silently re-run.

A real `python -m cephalo_agent run` process. Killed while its script runs, the restarted
agent finds the ticket Running in its journal: it adopts the script if it is still alive
and reports the outcome as unknown (-2, "Interrupted") when it ends. Killed after the script
finished but before the gateway heard of it, the restarted agent answers from its journal
with the real exit code. In every case the script ran exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from cephalo_agent.config import AgentPaths
from cephalo_agent.registration import register
from cephalo_agent.scripts import ADOPTED_MESSAGE, RESTARTED_MESSAGE
from cephalo_agent_gateway.testing.harness import (
    Orchestrator,
    Space,
    StepEvents,
    eventually,
    unique,
)
from cephalo_common.embedded import free_port

pytestmark = pytest.mark.faults


class AgentProcess:
    """`cephalo-agent run` as a real process (registered in-process, as the CLI does)."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.process: asyncio.subprocess.Process | None = None
        self.listen_port: int | None = None

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CEPHALO_")}
        env["CEPHALO_AGENT_HOME"] = str(self.home)
        return env

    def register(self, server: str, space: Space, mode: str) -> str:
        options: dict[str, Any] = {}
        if mode == "listening":
            self.listen_port = free_port()
            options["listening_url"] = f"https://127.0.0.1:{self.listen_port}"
            options["listen_host"] = "127.0.0.1"
        result = register(
            AgentPaths(self.home),
            server_url=server,
            space=str(space.id),
            name=unique("killed"),
            environments=["Production"],
            roles=["web"],
            mode=mode,
            **options,
        )
        assert result.config.machine_id is not None
        return result.config.machine_id

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "cephalo_agent",
            "run",
            env=self.env(),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 10)


@pytest.fixture
async def agent_process(tmp_path: Path) -> AsyncIterator[Callable[[], AgentProcess]]:
    made: list[AgentProcess] = []

    def make() -> AgentProcess:
        made.append(AgentProcess(tmp_path / unique("home")))
        return made[-1]

    yield make
    for agent in made:
        await agent.stop()


async def connected(served: Any, space: Space, agent: AgentProcess, machine_id: str) -> None:
    if agent.listen_port is None:
        async with served.client() as http:

            async def up() -> bool:
                url = f"/api/v1/spaces/{space.id}/machines/{machine_id}"
                return bool((await http.get(url)).json()["connected"])

            await eventually(up)
        return

    async def listening() -> bool:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", agent.listen_port)
        except OSError:
            return False
        writer.close()
        return True

    await eventually(listening)


@pytest.mark.parametrize("mode", ["polling", "listening"])
async def test_agent_killed_mid_script_reports_interrupted_and_never_reruns(
    mode: str,
    served: Any,
    space: Space,
    events: StepEvents,
    orchestrator: Orchestrator,
    agent_process: Callable[[], AgentProcess],
    tmp_path: Path,
) -> None:
    agent = agent_process()
    machine_id = await asyncio.to_thread(agent.register, served.url, space, mode)
    await agent.start()
    await connected(served, space, agent, machine_id)
    executions = tmp_path / "executions"
    # Longer than the gateway's 2 s start wait: "begun" arrives while the script still runs.
    script = f"echo run >> {executions}; echo begun; sleep 4; echo after"
    envelope = await orchestrator.dispatch(space, machine_id, script_body=script)
    ticket = envelope.data["ticket"]
    await eventually(lambda: events.lines(ticket) == ["begun"])

    await agent.kill()
    await agent.start()
    finished = await events.wait_finished(ticket)

    assert executions.read_text() == "run\n"
    assert finished.exit_code == -2
    assert finished.error is not None and finished.error.startswith("Interrupted")
    lines = events.lines(ticket)
    assert lines[0] == "begun"
    assert lines[-1] in (ADOPTED_MESSAGE, RESTARTED_MESSAGE)
    assert "after" not in lines
    assert events.sequences(ticket) == list(range(1, len(lines) + 1))


async def test_agent_killed_after_the_script_ended_answers_from_its_journal(
    serve_another_gateway: Any,
    space: Space,
    events: StepEvents,
    orchestrator: Orchestrator,
    agent_process: Callable[[], AgentProcess],
    tmp_path: Path,
) -> None:
    """The gateway polls slowly here (and does not ask the agent to hold its calls open), so
    it cannot learn the outcome before the kill."""
    async with serve_another_gateway(
        status_poll_seconds=2.0, start_wait_seconds=0, status_wait_seconds=0
    ) as served:
        agent = agent_process()
        machine_id = await asyncio.to_thread(agent.register, served.url, space, "polling")
        await agent.start()
        await connected(served, space, agent, machine_id)
        executions = tmp_path / "executions"
        script = f"echo run >> {executions}; echo done; exit 7"
        envelope = await orchestrator.dispatch(space, machine_id, script_body=script)
        ticket = envelope.data["ticket"]
        await eventually(lambda: (agent.home / "tickets" / ticket / "exit_code").exists())
        assert not events.finished_for(ticket)

        await agent.kill()
        await agent.start()
        finished = await events.wait_finished(ticket)

    assert executions.read_text() == "run\n"
    assert (finished.exit_code, finished.error) == (7, None)
    assert events.lines(ticket) == ["done"]
