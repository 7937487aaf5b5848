"""Two replicas of every service share the work and survive losing one of each.

Real processes on loopback: two of each of the five services on distinct ports, one PostgreSQL
and one NATS, round-robin proxies standing in for Kubernetes Services, four real polling agents
(the in-process swarm: real certificates, mutual TLS, the real protocol). 50 deployments go out
in parallel through the public API: the first 25 with every replica up, the last 25 while one
replica of each service is SIGKILLed mid-run.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from replicated_stack import Replica, ReplicatedStack
from swarm import Swarm

from cephalo_dev import demo

pytestmark = [pytest.mark.e2e, pytest.mark.faults, pytest.mark.scaleout]
AGENTS = 4
PROJECTS = 25
TERMINAL = {"Success", "Failed", "Canceled", "TimedOut"}


def script(runs: Path, pause: float) -> str:
    """One line per execution in a file the test reads: duplicates cannot hide."""
    return (
        f'echo "$CEPHALO_VAR_OCTOPUS_DEPLOYMENT_ID" >> {runs}\n'
        f"sleep {pause}\n"
        'echo "ran $CEPHALO_VAR_OCTOPUS_DEPLOYMENT_ID"\n'
    )


async def retried(api: demo.Api, method: str, path: str, **kwargs: Any) -> Any:
    """A call through the gateway proxy, again if the replica it reached was just killed."""
    for attempt in range(20):
        try:
            return await api.call(method, path, **kwargs)
        except (httpx.TransportError, RuntimeError) as error:
            if attempt == 19 or (isinstance(error, RuntimeError) and " 50" not in str(error)):
                raise
            await asyncio.sleep(0.5)


async def tasks_of(api: demo.Api, deployment_id: str) -> list[dict[str, Any]]:
    listed = await retried(api, "GET", f"/tasks?deployment_id={deployment_id}")
    return list(listed["items"] if isinstance(listed, dict) else listed)


async def until_terminal(api: demo.Api, deployment_ids: list[str], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        pending = set(deployment_ids)
        while pending:
            for deployment_id in list(pending):
                tasks = await tasks_of(api, deployment_id)
                if tasks and tasks[0]["state"] in TERMINAL:
                    pending.discard(deployment_id)
            await asyncio.sleep(0.5)


async def deploy_all(
    api: demo.Api, releases: list[dict[str, Any]], environment: dict[str, Any]
) -> list[str]:
    async def one(release: dict[str, Any]) -> str:
        body = {"release_id": release["id"], "environment_id": environment["id"]}
        return str((await api.call("POST", "/deployments", json=body))["id"])

    return list(await asyncio.gather(*(one(release) for release in releases)))


async def seed(api: demo.Api, runs: Path) -> list[dict[str, Any]]:
    """25 projects (each targets one agent's role) with two releases each."""
    slots = asyncio.Semaphore(5)

    async def project(index: int) -> list[dict[str, Any]]:
        async with slots:
            created = await api.call("POST", "/projects", json={"name": f"Scale {index:02d}"})
            step = {
                "name": "Run",
                "target_roles": [f"scale-{index % AGENTS}"],
                "script_body": script(runs, 0.2 if index % 2 else 1.5),
            }
            await api.call(
                "PUT", f"/projects/{created['id']}/deployment-process", json={"steps": [step]}
            )
            return [
                await api.call(
                    "POST", f"/projects/{created['id']}/releases", json={"version": version}
                )
                for version in ("1.0.0", "1.0.1")
            ]

    releases = await asyncio.gather(*(project(index) for index in range(PROJECTS)))
    return [pair[0] for pair in releases] + [pair[1] for pair in releases]


async def add_agents(stack: ReplicatedStack, space_id: str, root: Path) -> Swarm:
    """Registered straight with agent-gateway (no API key: the bench swarm's way), through its
    proxy; they dial the polling proxy the registration answer names."""
    swarm = Swarm(root, stack.url("agent-gateway"), space_id, environments=["Production"])
    for index in range(AGENTS):
        swarm.roles = [f"scale-{index}"]
        await swarm.add(1, prefix=f"scale-{index}")
    await swarm.start()
    await swarm.wait_connected(timeout=120)
    return swarm


async def check_once_each(
    api: demo.Api, deployment_ids: list[str], runs: Path, *, exactly: bool
) -> tuple[Counter[str], Counter[str]]:
    """One task and one step run per deployment, its script run once (at most once when a
    replica died under it); returns (task states, script runs per deployment)."""
    executions = Counter(runs.read_text().split())
    states: Counter[str] = Counter()
    for deployment_id in deployment_ids:
        tasks = await tasks_of(api, deployment_id)
        assert len(tasks) == 1, (deployment_id, tasks)
        task = await retried(api, "GET", f"/tasks/{tasks[0]['id']}")
        assert len(task["step_runs"]) == 1, task
        states[task["state"]] += 1
        if exactly:
            assert task["state"] == "Success", task
        assert executions[deployment_id] == (1 if task["state"] == "Success" else 0) or (
            not exactly and executions[deployment_id] <= 1
        ), (deployment_id, task)
    return states, executions


async def until_scripts_started(runs: Path, count: int, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while len(runs.read_text().split()) < count:
            await asyncio.sleep(0.1)


@pytest.mark.timeout(900)
async def test_two_replicas_of_each_service_run_fifty_deployments_once_each(
    new_database: Callable[[str], str], new_nats: Callable[[str], str], tmp_path: Path
) -> None:
    started = time.monotonic()
    database_url, nats_url = new_database("scaleout"), new_nats("scaleout")
    stack = await ReplicatedStack.create(tmp_path / "stack", database_url, nats_url)
    await asyncio.to_thread(stack.migrate)
    swarm: Swarm | None = None
    runs = tmp_path / "runs.txt"
    runs.touch()
    try:
        await stack.start_replicas()
        async with httpx.AsyncClient(
            base_url=stack.gateway_url, timeout=30, headers=stack.auth_headers
        ) as client:
            api = demo.Api(client)
            space = await api.call("GET", "")
            environment = await demo.ensure_environment(api, "Production")
            swarm = await add_agents(stack, str(space["id"]), tmp_path / "agents")
            releases = await seed(api, runs)

            ready = time.monotonic()

            calm = await deploy_all(api, releases[:PROJECTS], environment)
            await until_terminal(api, calm, timeout=300)
            await check_once_each(api, calm, runs, exactly=True)
            spread = {r.name: agents_on(stack, r) for r in gateways(stack)}
            calm_done = time.monotonic()

            stormy = await deploy_all(api, releases[PROJECTS:], environment)
            await until_scripts_started(runs, PROJECTS + 4)
            await asyncio.to_thread(stack.kill, "a")
            await until_terminal(api, stormy, timeout=300)
            outcomes, executions = await check_once_each(api, stormy, runs, exactly=False)
    finally:
        if swarm is not None:
            await swarm.stop()
        await stack.aclose()

    assert all(spread.values()) and len(set().union(*spread.values())) == AGENTS, spread
    assert len(agents_on(stack, gateways(stack)[1])) == AGENTS  # a's agents moved over to b
    print(
        f"\nscale-out: {time.monotonic() - started:.0f}s (start {ready - started:.0f}s, "
        f"calm 25 {calm_done - ready:.0f}s); agents per gateway "
        f"{ {name: sorted(agents) for name, agents in spread.items()} }; after the kill "
        f"{dict(outcomes)}, scripts run {sum(executions[d] for d in stormy)} of {PROJECTS}"
    )


def gateways(stack: ReplicatedStack) -> list[Replica]:
    return [r for r in stack.replicas if r.spec.name == "agent-gateway"]


def agents_on(stack: ReplicatedStack, replica: Replica) -> set[str]:
    """Agents this agent-gateway replica logged as connected (its own word, not the proxy's)."""
    return {event["machine"] for event in stack.logged_events(replica, "agent connected")}
