"""The swarm used by `bench_agents.py` works: many agents, one process, every script runs.

Small numbers here (the benchmark runs thousands); no timing is asserted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from swarm import Swarm  # tests/bench, put on sys.path by the conftest

from cephalo_agent_gateway.testing.harness import Orchestrator, Space, StepEvents


async def test_a_swarm_of_polling_and_listening_agents_runs_a_script_on_each(
    served: Any,
    space: Space,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    swarm = Swarm(tmp_path / "swarm", served.url, str(space.id))
    try:
        await swarm.add(6, mode="polling")
        await swarm.add(2, mode="listening", prefix="listener")
        await swarm.start()
        await swarm.wait_connected(timeout=60)
        thumbprints = {member.agent.polling.agent_thumbprint for member in swarm.agents[:6]}
        assert len(thumbprints) == 6  # each agent has its own certificate

        dispatched = [
            (await orchestrator.dispatch(space, member.machine_id, script_body="echo ok"))
            for member in swarm.agents
        ]
        finished = await asyncio.gather(
            *(events.wait_finished(envelope.data["ticket"]) for envelope in dispatched)
        )
    finally:
        await swarm.stop()
    assert [event.exit_code for event in finished] == [0] * len(swarm.agents)
    assert all(events.lines(envelope.data["ticket"]) == ["ok"] for envelope in dispatched)
    assert all((member.paths.tickets).exists() for member in swarm.agents)
