"""`make soak` (R15, not in CI): deployments for a while with the agents' links cut every 30 s.

    .venv/bin/python tests/bench/soak.py [--minutes 20] [--deployments 500] [--agents 4]

Starts its own PostgreSQL and NATS and every service as a real process, registers polling
agents (real processes) whose connections run through a fault proxy on this process, and
requests the given number of deployments evenly over the given time (each a release of a
one-step project: a short script on every agent), while the proxy severs every agent
connection every 30 s (R5's fault: the agents reconnect and their scripts carry on). Then it
waits for every task to end and reports: tasks by final state (a task not terminal is a
leaked one), each service's resident memory after the warm-up and at the end (growth,
target < 10 %), PostgreSQL connections per service after the warm-up and at the end, and the
agents' open connections at the end. Writes the bench-soak section of docs/benchmarks.md and
docs/benchmarks/soak.json; a failed run writes nothing. Not a benchmark of speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from cephalo_agent.config import AgentPaths, load_config, save_config
from cephalo_agent_gateway.testing.fault_proxy import FaultProxy
from cephalo_dev.agents import LocalAgent
from cephalo_dev.benchreport import (
    Comparison,
    describe_machine,
    load_average,
    machine,
    write_report,
    write_section,
)
from cephalo_dev.benchstack import (
    READY_SECONDS,
    UnthrottledStack,
    embedded_servers,
    free_ports,
    rss_mib,
)
from cephalo_dev.processes import stop
from cephalo_dev.stack import Stack

SPACE = "/api/v1/spaces/default"
ROLE = "soak"
SEVER_EVERY_SECONDS = 30.0
SETTLE_SECONDS = 300
GROWTH_TARGET = 0.10
TERMINAL = {"Success", "Failed", "Canceled", "TimedOut"}
SCRIPT = 'for i in $(seq 1 5); do echo "soak line $i"; sleep 0.2; done\n'


def memory(stack: Stack) -> dict[str, float]:
    return {name: round(rss_mib(process.pid), 1) for name, process in stack.processes.items()}


async def connections(database_url: str) -> dict[str, int]:
    """PostgreSQL connections by application name (each service names its pool)."""
    dsn = database_url.replace("postgresql+asyncpg", "postgresql")
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch(
            "SELECT application_name, count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "GROUP BY application_name"
        )
        return {row[0] or "(none)": int(row[1]) for row in rows}
    finally:
        await connection.close()


def agents_behind(stack: Stack, count: int, proxy_port: int, home: Path) -> list[LocalAgent]:
    """Register `count` polling agents, then point each at the proxy instead of the gateway."""
    made = []
    for n in range(count):
        agent = LocalAgent(
            f"soak-{n}", home / f"agent-{n}", stack.gateway_url, api_key=stack.api_key
        )
        agent.register(["Soak"], [ROLE])
        paths = AgentPaths(agent.home)
        config = load_config(paths)
        endpoint = f"wss://127.0.0.1:{proxy_port}/poll"
        save_config(paths, config.model_copy(update={"polling_endpoint": endpoint}))
        made.append(agent)
    return made


async def seed(api: httpx.AsyncClient) -> tuple[str, str]:
    environment = (await api.post(f"{SPACE}/environments", json={"name": "Soak"})).json()
    phase = {"name": "All", "optional_environment_ids": [environment["id"]]}
    (
        await api.post(f"{SPACE}/lifecycles", json={"name": "Soak", "phases": [phase]})
    ).raise_for_status()
    project = await api.post(f"{SPACE}/projects", json={"name": "Soak", "lifecycle": "Soak"})
    project.raise_for_status()
    step = {"name": "Soak", "target_roles": [ROLE], "script_body": SCRIPT}
    process = f"{SPACE}/projects/{project.json()['id']}/deployment-process"
    (await api.put(process, json={"steps": [step]})).raise_for_status()
    return environment["id"], project.json()["id"]


async def wait_connected(api: httpx.AsyncClient, count: int) -> None:
    async with asyncio.timeout(180):
        while True:
            machines = (await api.get(f"{SPACE}/machines")).json()
            items = machines["items"] if isinstance(machines, dict) else machines
            if sum(1 for m in items if m.get("connected")) >= count:
                return
            await asyncio.sleep(0.5)


async def deploy(api: httpx.AsyncClient, project: str, environment: str, n: int) -> str | None:
    release = await api.post(f"{SPACE}/projects/{project}/releases", json={"version": f"1.0.{n}"})
    if release.status_code >= 400:
        print(f"release {n}: {release.status_code} {release.text[:200]}", flush=True)
        return None
    body = {"release_id": release.json()["id"], "environment_id": environment}
    deployment = await api.post(f"{SPACE}/deployments", json=body)
    if deployment.status_code >= 400:
        print(f"deployment {n}: {deployment.status_code} {deployment.text[:200]}", flush=True)
        return None
    return str(deployment.json()["id"])


async def task_state(api: httpx.AsyncClient, deployment_id: str) -> str:
    listed = (await api.get(f"{SPACE}/tasks", params={"deployment_id": deployment_id})).json()
    items = listed["items"] if isinstance(listed, dict) else listed
    return str(items[0]["state"]) if items else "(no task)"


async def severing(proxy: FaultProxy, until: float, counts: Counter[str]) -> None:
    while time.monotonic() < until:
        await asyncio.sleep(min(SEVER_EVERY_SECONDS, max(0.0, until - time.monotonic())))
        counts["severed"] += proxy.sever()
        counts["rounds"] += 1


async def soak(
    stack: Stack, database_url: str, args: argparse.Namespace, home: Path
) -> dict[str, Any]:
    proxy = await FaultProxy(stack.ports.polling, max_connections=4 * args.agents).start()
    processes = []
    try:
        async with httpx.AsyncClient(
            base_url=stack.gateway_url, headers=stack.auth_headers, timeout=60
        ) as api:
            environment, project = await seed(api)
            agents = await asyncio.to_thread(agents_behind, stack, args.agents, proxy.port, home)
            processes = [a.start(stack.logs_dir / f"{a.name}.log") for a in agents]
            await wait_connected(api, args.agents)
            seconds = args.minutes * 60
            began = time.monotonic()
            faults: Counter[str] = Counter()
            sever_task = asyncio.create_task(severing(proxy, began + seconds, faults))
            warm_at = began + min(120.0, seconds / 10)
            warm: dict[str, Any] = {}
            deployments: list[str] = []
            for n in range(args.deployments):
                due = began + n * seconds / args.deployments
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not warm and time.monotonic() >= warm_at:
                    warm = {"rss": memory(stack), "db": await connections(database_url)}
                found = await deploy(api, project, environment, n + 1)
                if found:
                    deployments.append(found)
            await sever_task
            states: Counter[str] = Counter()
            async with asyncio.timeout(SETTLE_SECONDS):
                pending = list(deployments)
                while pending:
                    still = []
                    for deployment_id in pending:
                        state = await task_state(api, deployment_id)
                        if state in TERMINAL:
                            states[state] += 1
                        else:
                            still.append(deployment_id)
                    pending = still
                    if pending:
                        await asyncio.sleep(2)
            await asyncio.sleep(5)  # let pools settle after the last task
            return {
                "seconds": round(time.monotonic() - began),
                "requested": args.deployments,
                "accepted": len(deployments),
                "states": dict(states),
                "not_terminal": len(deployments) - sum(states.values()),
                "faults": dict(faults),
                "rss_warm": warm.get("rss") or memory(stack),
                "rss_end": memory(stack),
                "db_warm": warm.get("db", {}),
                "db_end": await connections(database_url),
                "agent_connections_end": proxy.open_connections,
                "agents": args.agents,
            }
    finally:
        for process in processes:
            stop(process)
        await proxy.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        work = Path(scratch)
        os.chmod(work, 0o755)
        with embedded_servers(work) as (database_url, nats_url):
            stack = UnthrottledStack(work / "stack", database_url, nats_url, free_ports())
            stack.migrate()
            stack.start_services()
            try:
                asyncio.run(stack.wait_ready(timeout=READY_SECONDS))
                return asyncio.run(soak(stack, database_url, args, work))
            finally:
                stack.stop()


def report(result: dict[str, Any], minutes: float) -> None:
    info, load = machine(), load_average()
    growth = {
        name: (result["rss_end"][name] - warm) / warm
        for name, warm in result["rss_warm"].items()
        if warm
    }
    worst = max(growth.values())
    rows = "\n".join(
        f"| {name} | {result['rss_warm'][name]:.0f} MiB | {result['rss_end'][name]:.0f} MiB "
        f"| {growth[name]:+.1%} | {result['db_warm'].get(name, 0)} | {result['db_end'].get(name, 0)} |"
        for name in result["rss_warm"]
    )
    body = (
        f"## Soak: {result['requested']} deployments over {minutes:g} min with agent links cut "
        f"every {SEVER_EVERY_SECONDS:.0f} s (R15)\n\n"
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: "
        f"{describe_machine(info, load)}.\n\n"
        "`tests/bench/soak.py` (`make soak`, `SOAK_MINUTES`): its own PostgreSQL and NATS, every "
        f"service as a real process, {result['agents']} polling agents (real processes) behind "
        "a fault proxy that severs every agent connection every "
        f"{SEVER_EVERY_SECONDS:.0f} s; deployments requested evenly over the time through the "
        "public API (a release of a one-step project, a 1 s script on every agent each). "
        "Memory after the warm-up (2 min, or a tenth of a shorter run) and at the end; "
        "PostgreSQL connections per service (pg_stat_activity by application name).\n\n"
        f"Deployments accepted: {result['accepted']} of {result['requested']}; final states: "
        + ", ".join(f"{k} {v}" for k, v in sorted(result["states"].items()))
        + f"; not terminal {SETTLE_SECONDS} s after the last request (leaked): "
        f"**{result['not_terminal']}**. Faults: {result['faults'].get('rounds', 0)} rounds, "
        f"{result['faults'].get('severed', 0)} connections severed. Agent connections at the "
        f"end: {result['agent_connections_end']} for {result['agents']} agents.\n\n"
        "| service | RSS after warm-up | RSS at end | growth | DB connections after warm-up "
        "| at end |\n|---|---|---|---|---|---|\n" + rows
    )  # fmt: skip
    write_section("bench-soak", body)
    write_report(
        "soak",
        f"Soak: {result['requested']} deployments over {minutes:g} min with agent faults",
        [
            Comparison("tasks not terminal at the end", result["not_terminal"], "count",
                       target="0", met=result["not_terminal"] == 0),
            Comparison("largest memory growth after warm-up", round(100 * worst, 1), "%",
                       target=f"< {GROWTH_TARGET:.0%}", met=worst < GROWTH_TARGET),
            Comparison("deployments succeeded", result["states"].get("Success", 0), "count",
                       target=f"= {result['requested']}",
                       met=result["states"].get("Success", 0) == result["requested"]),
        ],
        extra={"result": result},
    )  # fmt: skip
    print(json.dumps(result, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", 20)))
    parser.add_argument("--deployments", type=int, default=None)
    parser.add_argument("--agents", type=int, default=4)
    args = parser.parse_args()
    if args.deployments is None:
        args.deployments = max(1, round(500 * args.minutes / 20))
    report(run(args), args.minutes)


if __name__ == "__main__":
    main()
