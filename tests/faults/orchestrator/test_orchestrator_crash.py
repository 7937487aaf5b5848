"""The orchestrator is SIGKILLed mid-deployment and restarted: nothing runs twice, nothing is
lost, nothing is left Executing.

Real parts, all loopback: the orchestrator as its own process (the one that dies), the real
agent-gateway and release-service in this process, a swarm of real agents (mutual TLS,
polling), Postgres and NATS JetStream of this suite's own. Each seed deploys ten projects of
three steps (each to a group of two agents, two projects per group), kills the orchestrator
once the number of scripts the seed draws has started, restarts it, and checks the outcome
on the agents (a file per machine that every script appends to) and in the task log. The
seeds share one stack; only the orchestrator restarts.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from swarm import Swarm  # tests/bench, put on sys.path by the conftest

from cephalo_agent_gateway.testing.fixtures import ServedGateway
from cephalo_agent_gateway.testing.harness import Space
from cephalo_common.contracts import (
    DEPLOYMENT_REQUESTED,
    DeploymentRequestedV1,
    ScriptActionSnapshot,
)
from cephalo_common.embedded import free_port
from cephalo_common.messaging.envelope import new_envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.settings import NatsSettings
from cephalo_dev.processes import spawn

pytestmark = pytest.mark.faults

GROUPS = 5  # each deployment targets one group: two deployments share its agents
AGENTS_PER_GROUP = 2
DEPLOYMENTS = 10
STEPS = ("First", "Second", "Third")
LINES = 4
RUNS_PER_SEED = DEPLOYMENTS * len(STEPS) * AGENTS_PER_GROUP
SEEDS = (1, 2, 3)
LOST = "orchestrator-lost"
TERMINAL = ("Success", "Failed", "Canceled", "TimedOut")


def script(runs_dir: Path, tag: str) -> str:
    """Counts itself on the agent, then logs LINES numbered lines slowly enough to be cut."""
    counter = f'"{runs_dir}/$CEPHALO_VAR_OCTOPUS_MACHINE_NAME"'
    return (
        f'echo "{tag} $CEPHALO_VAR_OCTOPUS_ACTION_NAME" >> {counter}\n'
        f'for i in $(seq 1 {LINES}); do echo "line $i"; sleep 0.05; done\n'
    )


def request(space: Space, runs_dir: Path, tag: str, group: int) -> DeploymentRequestedV1:
    return DeploymentRequestedV1(
        deployment_id=str(uuid.uuid4()),
        release_id=str(uuid.uuid4()),
        release_version="1.0.0",
        project_id=str(uuid.uuid4()),
        project_name=tag,
        environment_id=str(space.environments["Production"]),
        environment_name="Production",
        steps=[
            ScriptActionSnapshot(
                id=str(uuid.uuid4()),
                name=name,
                action_type="cephalo.script",
                target_roles=[f"group-{group}"],
                properties={"script_body": script(runs_dir, tag), "syntax": "bash"},
            )
            for name in STEPS
        ],
    )


class OrchestratorProcess:
    """`python -m cephalo_orchestrator api` with the suite's database, NATS and gateway."""

    def __init__(self, database: str, nats_url: str, gateway_url: str, logs: Path) -> None:
        self.port = free_port()
        self.logs = logs
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CEPHALO_")}
        prefix = "CEPHALO_ORCHESTRATOR_"
        self.env.update(
            {
                prefix + "PORT": str(self.port),
                prefix + "DATABASE__URL": database,
                prefix + "NATS__URL": nats_url,
                prefix + "AGENT_GATEWAY_URL": gateway_url,
                prefix + "TASK_POLL_SECONDS": "0.1",
                prefix + "MESSAGING__OUTBOX_POLL_SECONDS": "0.1",
                prefix + "MESSAGING__CONSUMER_ACK_WAIT_SECONDS": "3",
                prefix + "LEASE_SECONDS": "3",
                prefix + "SWEEP_SECONDS": "1",
            }
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.process = spawn(
            [sys.executable, "-m", "cephalo_orchestrator", "api"],
            env=self.env,
            log_path=self.logs,
        )
        async with httpx.AsyncClient(timeout=2.0) as client, asyncio.timeout(180):
            while True:
                assert self.process.poll() is None, f"orchestrator exited, see {self.logs}"
                try:
                    if (await client.get(self.url + "/readyz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, whatever was in flight is cut."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None


@asynccontextmanager
async def deployment_stack(
    served: ServedGateway, space: Space, database: str, nats_url: str, root: Path
) -> AsyncIterator[tuple[OrchestratorProcess, NatsBroker]]:
    swarm = Swarm(root / "swarm", served.url, str(space.id))
    broker = NatsBroker(NatsSettings(url=nats_url), name="crash-deploy")
    orchestrator = OrchestratorProcess(database, nats_url, served.url, root / "orchestrator.log")
    try:
        for group in range(GROUPS):
            swarm.roles = [f"group-{group}"]
            await swarm.add(AGENTS_PER_GROUP, mode="polling", prefix=f"group{group}")
        await swarm.start()
        await swarm.wait_connected(timeout=120)
        await broker.start()
        await broker.wait_connected(30)
        await orchestrator.start()
        yield orchestrator, broker
    finally:
        orchestrator.stop()
        await broker.close()
        await swarm.stop()


@pytest.mark.timeout(900)  # about 3 min on a quiet 2-core machine
async def test_a_killed_orchestrator_resumes_without_running_a_step_twice(
    served: ServedGateway,
    space: Space,
    database: str,
    nats_url: str,
    tmp_path: Path,
) -> None:
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    async with deployment_stack(served, space, database, nats_url, tmp_path) as (
        orchestrator,
        broker,
    ):
        for seed in SEEDS:
            tags = [f"seed{seed}-deploy{n}" for n in range(DEPLOYMENTS)]
            requests = [request(space, runs_dir, tag, n % GROUPS) for n, tag in enumerate(tags)]
            for deployment in requests:
                envelope = new_envelope(
                    source="cephalo://release-service",
                    type=DEPLOYMENT_REQUESTED.type,
                    space=str(space.id),
                    data=deployment,
                )
                await broker.publish(DEPLOYMENT_REQUESTED.subject(str(space.id)), envelope)
            started = time.monotonic()
            moment = random.Random(seed).randint(1, RUNS_PER_SEED * 2 // 3)
            await _scripts_started(runs_dir, f"seed{seed}-", moment)
            orchestrator.kill()
            killed = time.monotonic() - started
            await orchestrator.start()
            async with httpx.AsyncClient(base_url=orchestrator.url, timeout=30) as client:
                tasks = [await _finished(client, space, d.deployment_id) for d in requests]
                logs = [await _log(client, space, task["id"]) for task in tasks]
            done = time.monotonic() - started
            print(
                f"seed {seed}: killed after {moment} scripts ({killed:.1f} s), done in {done:.1f} s"
            )
            _check(seed, tags, tasks, logs, runs_dir)


def _check(
    seed: int,
    tags: list[str],
    tasks: list[dict[str, Any]],
    logs: list[list[dict[str, Any]]],
    runs_dir: Path,
) -> None:
    ran = Counter(
        line for path in runs_dir.iterdir() for line in path.read_text().splitlines() if line
    )
    for tag, task, log in zip(tags, tasks, logs, strict=True):
        where = f"seed {seed}, {tag}: {task['state']} {task['reason']}"
        assert task["state"] == "Success" or (
            task["state"] in ("Failed", "Paused") and LOST in (task["reason"] or "")
        ), where
        machines = {run["machine_name"] for run in task["step_runs"]}
        per_target = Counter((run["step_name"], run["machine_name"]) for run in task["step_runs"])
        assert set(per_target.values()) <= {1}, where
        for step in STEPS:
            on_agents = ran[f"{tag} {step}"]
            assert on_agents <= len(machines), where
            if task["state"] == "Success":
                assert on_agents == AGENTS_PER_GROUP, where
        _check_log(where, task, log)


def _check_log(where: str, task: dict[str, Any], log: list[dict[str, Any]]) -> None:
    """Every agent line once, numbered without gaps; every line of ours once."""
    by_run: dict[tuple[str, str], list[dict[str, Any]]] = {}
    ours: Counter[tuple[str, str | None, str | None]] = Counter()
    for line in log:
        if line["source"] in ("stdout", "stderr"):
            by_run.setdefault((line["step"], line["machine"]), []).append(line)
        else:
            ours[(line["text"], line["step"], line["machine"])] += 1
    assert [key for key, count in ours.items() if count > 1] == [], where
    for run in task["step_runs"]:
        if run["state"] != "Success":
            continue
        lines = by_run.get((run["step_name"], run["machine_name"]), [])
        sequences = [line["sequence"] for line in lines]
        assert sorted(sequences) == list(range(1, len(lines) + 1)), where
        texts = [line["text"] for line in lines if line["text"].startswith("line ")]
        assert sorted(texts) == sorted(f"line {n}" for n in range(1, LINES + 1)), where


async def _scripts_started(runs_dir: Path, prefix: str, count: int) -> None:
    """The random moment is counted in scripts started on the agents, not in seconds: on a
    loaded machine a fixed delay can end before any task starts."""
    async with asyncio.timeout(180):
        while True:
            started = sum(
                line.startswith(prefix)
                for path in runs_dir.iterdir()
                for line in path.read_text().splitlines()
            )
            if started >= count:
                return
            await asyncio.sleep(0.05)


async def _finished(client: httpx.AsyncClient, space: Space, deployment_id: str) -> dict[str, Any]:
    url = f"/api/v1/spaces/{space.id}/tasks"
    async with asyncio.timeout(180):
        while True:
            listed = (await client.get(url, params={"deployment_id": deployment_id})).json()
            if listed and (
                listed[0]["state"] in TERMINAL
                or (listed[0]["state"] == "Paused" and LOST in (listed[0]["reason"] or ""))
            ):
                return dict((await client.get(f"{url}/{listed[0]['id']}")).json())
            await asyncio.sleep(0.3)


async def _log(client: httpx.AsyncClient, space: Space, task_id: str) -> list[dict[str, Any]]:
    url = f"/api/v1/spaces/{space.id}/tasks/{task_id}/log"
    return list((await client.get(url, params={"limit": 10_000})).json())
