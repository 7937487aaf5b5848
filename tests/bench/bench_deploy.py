"""`make bench-deploy`: one trivial script step deployed to 10, 100 and 1,000 agents.

    .venv/bin/python tests/bench/bench_deploy.py [--targets 10,100,1000] [--runs 3]

The real path, every server a process of its own with its production defaults:
release-service (a deployment requested over HTTP, as the api-gateway forwards it) ->
deploy-orchestrator -> agent-gateway -> a swarm of polling agents (`swarm.py`, real mutual
TLS, each with its own journal and ScriptService) -> task `Success`. Measures, per size:
the time from the deploy request to the task's `Success` (the task's completion time as the
orchestrator recorded it), the overhead per target, the CPU seconds each server process
spent per target, and the latency from the request to the first script start (the start
time in the agent's ticket journal). Writes the `bench-deploy` section of
docs/benchmarks.md, docs/benchmarks/deploy.json and the plot docs/benchmarks/deploy-fanout.png.

A benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from bench_agents import cpu_seconds, machine, raise_fd_limit  # tests/bench
from swarm import Swarm, SwarmAgent

from cephalo_common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cephalo_dev import benchreport
from cephalo_dev.processes import spawn, stop
from cephalo_dev.stack import SERVICES, Ports, ServiceSpec, Stack

ROOT = Path(__file__).resolve().parents[2]
NAME = "deploy"
SERVERS = ("release-service", "deploy-orchestrator", "agent-gateway")
ROLE = "swarm"
SCRIPT = "echo ok"
TERMINAL = {"Success", "Failed", "Canceled", "TimedOut"}
TARGET_SECONDS_1000 = 30.0
TARGET_FIRST_START_SECONDS = 0.3
TARGET_FLATNESS = 2.0


@dataclass
class Run:
    targets: int
    dispatched: int
    seconds: float  # request -> task Success (orchestrator's completed_at)
    first_start: float  # request -> first script start (agent journal)
    last_start: float
    state: str
    cpu: dict[str, float]  # server process -> CPU seconds during the run
    idle: dict[str, float] = field(default_factory=dict)  # CPU s per s with nothing to do

    def net_cpu(self, name: str) -> float:
        """The run's CPU less what the process spends idle (polls, ticks) over as long."""
        return self.cpu[name] - self.idle.get(name, 0.0) * self.seconds


@dataclass
class BenchStack(Stack):
    """release-service, deploy-orchestrator and agent-gateway only; the gateway's periodic
    health scan off, so it does not mix into the numbers (as in bench-agents)."""

    profile: Path | None = None
    pids: dict[str, int] = field(default_factory=dict)

    def service_env(self, spec: ServiceSpec) -> dict[str, str]:
        env = super().service_env(spec)
        env[f"CEPHALO_{spec.prefix}_LOG_LEVEL"] = "WARNING"
        env["CEPHALO_AGENT_GATEWAY_HEALTH_SCAN_SECONDS"] = "3600"
        return env

    def start_services(self) -> None:
        for spec in SERVICES:
            if spec.name not in SERVERS:
                continue
            command = [sys.executable, "-m", spec.package, "api"]
            if self.profile is not None and spec.name == "deploy-orchestrator":
                profiler = str(Path(__file__).with_name("profiled.py"))
                command = [sys.executable, profiler, str(self.profile), spec.package, "api"]
            self.processes[spec.name] = spawn(
                command, env=self.service_env(spec), log_path=self.logs_dir / f"{spec.name}.log"
            )
            self.pids[spec.name] = self.processes[spec.name].pid

    async def wait_ready(self, timeout: float = 180.0) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client, asyncio.timeout(timeout):
            for name in SERVERS:
                while True:
                    process = self.processes[name]
                    if process.poll() is not None:
                        raise RuntimeError(f"{name} exited; see {self.logs_dir}")
                    with contextlib.suppress(httpx.TransportError):
                        if (await client.get(self.url(name) + "/readyz")).status_code == 200:
                            break
                    await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def bench_stack(work: Path, profile: Path | None) -> AsyncIterator[BenchStack]:
    postgres = EmbeddedPostgres(work / "postgres", free_port(), durable=False)
    nats_server = EmbeddedNats(work / "nats", free_port())
    database_url = postgres.start()
    nats_server.start()
    ports = Ports(*(free_port() for _ in range(6)))
    running = BenchStack(work / "stack", database_url, nats_server.url, ports, profile=profile)
    try:
        await asyncio.to_thread(running.migrate)
        running.start_services()
        await running.wait_ready()
        yield running
    finally:
        for name in reversed(list(running.processes)):
            stop(running.processes.pop(name))
        nats_server.stop()
        postgres.stop()


@contextlib.contextmanager
def profiling(running: BenchStack) -> Iterator[None]:
    """cProfile the orchestrator meanwhile, when it runs under `profiled.py` (`--profile`)."""
    process = running.processes.get("deploy-orchestrator")
    if running.profile is None or process is None:
        yield
        return
    process.send_signal(signal.SIGUSR1)
    try:
        yield
    finally:
        process.send_signal(signal.SIGUSR2)


class Release:
    """release-service's API, as the api-gateway forwards it."""

    def __init__(self, http: httpx.AsyncClient, space_id: str) -> None:
        self.http = http
        self.base = f"/api/v1/spaces/{space_id}"

    async def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = await self.http.request(method, self.base + path, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text}")
        return response.json() if response.content else None


async def create_space(http: httpx.AsyncClient) -> tuple[str, str]:
    slug = f"bench-{os.urandom(4).hex()}"
    space = (await http.post("/api/v1/spaces", json={"name": slug, "slug": slug})).json()
    environment = await http.post(
        f"/api/v1/spaces/{space['id']}/environments", json={"name": "Production"}
    )
    environment.raise_for_status()
    return str(space["id"]), str(environment.json()["id"])


async def create_project(release: Release, targets: int) -> str:
    """One step, `echo ok` on every agent of the role; its window lets all targets run at
    once (the orchestrator's default is 10 targets per step)."""
    project = await release.call("POST", "/projects", json={"name": f"Fan-out {targets}"})
    step = {"name": "Echo", "target_roles": [ROLE], "script_body": SCRIPT, "window_size": targets}
    await release.call(
        "PUT", f"/projects/{project['id']}/deployment-process", json={"steps": [step]}
    )
    return str(project["id"])


def server_cpu(running: BenchStack) -> dict[str, float]:
    return {name: cpu_seconds(pid) for name, pid in running.pids.items()}


def parse_time(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def script_starts(agents: dict[str, SwarmAgent], runs: list[dict[str, Any]]) -> list[float]:
    """When each run's script started, from the ticket journal of the agent it ran on."""
    starts = []
    for run in runs:
        member = agents.get(run["machine_name"])
        if member is None:
            continue
        state = member.paths.tickets / run["ticket"] / "state.json"
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            starts.append(parse_time(json.loads(state.read_text())["started_at"]))
    return sorted(starts)


async def deploy_once(
    running: BenchStack,
    release: Release,
    orchestrator: httpx.AsyncClient,
    project_id: str,
    environment_id: str,
    agents: dict[str, SwarmAgent],
    version: str,
    size: int,
    idle: dict[str, float],
) -> Run:
    created = await release.call(
        "POST", f"/projects/{project_id}/releases", json={"version": version}
    )
    cpu = server_cpu(running)
    requested = time.time()
    deployment = await release.call(
        "POST", "/deployments", json={"release_id": created["id"], "environment_id": environment_id}
    )
    task = await finished_task(orchestrator, release.base, deployment["id"])
    used = {name: value - cpu[name] for name, value in server_cpu(running).items()}
    starts = script_starts(agents, task["step_runs"])
    if DUMP is not None:
        journals = {run["ticket"]: _journal(agents, run) for run in task["step_runs"]}
        dump = {"requested": requested, "task": task, "journals": journals}
        (DUMP / f"{size}-{version}.json").write_text(json.dumps(dump, indent=1))
    return Run(
        targets=size,
        dispatched=len(task["step_runs"]),
        seconds=parse_time(task["completed_at"]) - requested,
        first_start=(starts[0] - requested) if starts else float("nan"),
        last_start=(starts[-1] - requested) if starts else float("nan"),
        state=task["state"],
        cpu=used,
        idle=idle,
    )


DUMP: Path | None = None  # --dump: each run's task and journals, for looking into a run


def _journal(agents: dict[str, SwarmAgent], run: dict[str, Any]) -> Any:
    member = agents.get(run["machine_name"])
    if member is None:
        return None
    with contextlib.suppress(OSError, ValueError):
        return json.loads((member.paths.tickets / run["ticket"] / "state.json").read_text())
    return None


async def finished_task(http: httpx.AsyncClient, base: str, deployment_id: str) -> dict[str, Any]:
    async with asyncio.timeout(600):
        while True:
            try:
                response = await http.get(f"{base}/tasks", params={"deployment_id": deployment_id})
            except httpx.TransportError:  # a kept-alive connection closed under load
                await asyncio.sleep(0.25)
                continue
            listed = response.json() if response.status_code == 200 else []
            if listed and listed[0]["state"] in TERMINAL:
                detail = await http.get(f"{base}/tasks/{listed[0]['id']}")
                return dict(detail.json())
            await asyncio.sleep(0.25)


async def grow(swarm: Swarm, size: int) -> None:
    missing = size - len(swarm.agents)
    if missing <= 0:
        return
    began = time.monotonic()
    added = await swarm.add(missing, mode="polling", prefix="deploy")
    await swarm.start(added)
    await swarm.wait_connected(added, timeout=600)
    print(f"{size} agents registered and connected in {time.monotonic() - began:.0f} s", flush=True)


async def idle_rate(running: BenchStack, seconds: float = 5.0) -> dict[str, float]:
    before = server_cpu(running)
    await asyncio.sleep(seconds)
    return {name: (value - before[name]) / seconds for name, value in server_cpu(running).items()}


async def bench(
    sizes: list[int], runs: int, profile: Path | None, publish: Callable[[list[Run]], None]
) -> list[Run]:
    work = Path(tempfile.mkdtemp(prefix="cephalo-bench-deploy-"))
    work.chmod(0o755)
    results: list[Run] = []
    try:
        async with bench_stack(work, profile) as running:
            release_http = httpx.AsyncClient(base_url=running.url("release-service"), timeout=60)
            orchestrator = httpx.AsyncClient(
                base_url=running.url("deploy-orchestrator"), timeout=60
            )
            space_id, environment_id = await create_space(release_http)
            release = Release(release_http, space_id)
            swarm = Swarm(work / "swarm", running.url("agent-gateway"), space_id, roles=[ROLE])
            try:
                for size in sizes:
                    await grow(swarm, size)
                    agents = {member.name: member for member in swarm.agents}
                    project_id = await create_project(release, size)
                    await asyncio.sleep(2)  # let the connection burst settle
                    idle = await idle_rate(running)
                    with profiling(running) if size == max(sizes) else contextlib.nullcontext():
                        for attempt in range(runs):
                            run = await deploy_once(
                                running,
                                release,
                                orchestrator,
                                project_id,
                                environment_id,
                                agents,
                                f"1.0.{attempt}",
                                size,
                                idle,
                            )
                            results.append(run)
                            print(describe(run), flush=True)
                    publish(results)
            finally:
                await swarm.stop()
                await release_http.aclose()
                await orchestrator.aclose()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return results


def describe(run: Run) -> str:
    cpu = ", ".join(f"{name} {value:.1f} s" for name, value in run.cpu.items())
    return (
        f"{run.targets} targets: {run.state} in {run.seconds:.2f} s; first script start "
        f"{run.first_start * 1000:.0f} ms, last {run.last_start:.2f} s; CPU {cpu}"
    )


@dataclass
class Size:
    """The medians of one size's runs."""

    targets: int
    runs: list[Run]

    def median(self, value: Any) -> float:
        return statistics.median(value(run) for run in self.runs)

    @property
    def seconds(self) -> float:
        return self.median(lambda run: run.seconds)

    @property
    def first_start(self) -> float:
        return self.median(lambda run: run.first_start)

    @property
    def last_start(self) -> float:
        return self.median(lambda run: run.last_start)

    def cpu_per_target(self, name: str) -> float:
        return self.median(lambda run: run.cpu[name] / self.targets)

    def net_cpu_per_target(self, name: str) -> float:
        return self.median(lambda run: run.net_cpu(name) / self.targets)

    @property
    def measured_idle(self) -> bool:
        return all(run.idle for run in self.runs)

    @property
    def server_cpu_per_target(self) -> float:
        return self.median(lambda run: sum(run.cpu.values()) / self.targets)

    @property
    def states(self) -> str:
        return ", ".join(sorted({run.state for run in self.runs}))


def by_size(results: list[Run], sizes: list[int]) -> list[Size]:
    return [
        Size(size, [run for run in results if run.targets == size])
        for size in sizes
        if any(run.targets == size for run in results)
    ]


def load_average() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def comparisons(sizes: list[Size]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []

    def row(
        measure: str,
        value: float,
        unit: str,
        target: str | None = None,
        met: bool | None = None,
        reference: str | None = None,
        reference_value: float | None = None,
    ) -> None:
        ratio = value / reference_value if reference_value else None
        rows.append(
            {
                "measure": measure,
                "value": round(value, 4),
                "unit": unit,
                "reference": reference,
                "reference_value": round(reference_value, 4) if reference_value else None,
                "ratio": round(ratio, 3) if ratio is not None else None,
                "target": target,
                "met": met,
            }
        )

    for size in sizes:
        n = size.targets
        end = f"<= {TARGET_SECONDS_1000:.0f} s" if n == 1000 else None
        row(
            f"deploy request to task Success, {n} targets",
            size.seconds,
            "s",
            end,
            size.seconds <= TARGET_SECONDS_1000 if n == 1000 else None,
        )
        row(
            f"deploy request to first script start, {n} targets",
            size.first_start * 1000,
            "ms",
            f"<= {TARGET_FIRST_START_SECONDS * 1000:.0f} ms",
            size.first_start <= TARGET_FIRST_START_SECONDS,
        )
        row(f"time per target, {n} targets", size.seconds / n * 1000, "ms")
        for name in SERVERS:
            row(f"{name} CPU per target, {n} targets", size.cpu_per_target(name) * 1000, "ms")
    small = next((s for s in sizes if s.targets == 100), None)
    large = next((s for s in sizes if s.targets == 1000), None)
    if small and large:
        row(
            "server CPU per target, 1000 vs 100 targets",
            large.server_cpu_per_target * 1000,
            "ms",
            f"<= {TARGET_FLATNESS:.0f}x the 100-target cost",
            large.server_cpu_per_target <= TARGET_FLATNESS * small.server_cpu_per_target,
            "server CPU per target at 100 targets",
            small.server_cpu_per_target * 1000,
        )
        row(
            "time per target, 1000 vs 100 targets",
            large.seconds / 1000 * 1000,
            "ms",
            f"<= {TARGET_FLATNESS:.0f}x the 100-target time",
            large.seconds / 1000 <= TARGET_FLATNESS * small.seconds / 100,
            "time per target at 100 targets",
            small.seconds / 100 * 1000,
        )
    return rows


def write_json(path: Path, sizes: list[Size], runs: list[Run]) -> None:
    document = {
        "name": NAME,
        "title": "Deployment fan-out: one script step to N polling agents",
        "run_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": benchreport.machine(),
        "load_average": load_average(),
        "comparisons": comparisons(sizes),
        "runs": [run.__dict__ for run in runs],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {path}")


def write_plot(path: Path, sizes: list[Size]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    targets = [size.targets for size in sizes]
    for size in sizes:
        axes.scatter(
            [size.targets] * len(size.runs),
            [run.seconds for run in size.runs],
            color="tab:blue",
            alpha=0.35,
            s=14,
        )
    axes.plot(
        targets,
        [size.seconds for size in sizes],
        marker="o",
        color="tab:blue",
        label="request to task Success (median)",
    )
    axes.plot(
        targets,
        [size.last_start for size in sizes],
        marker="s",
        color="tab:green",
        label="request to last script start (median)",
    )
    axes.axhline(
        TARGET_SECONDS_1000,
        color="tab:red",
        linestyle="--",
        linewidth=1,
        label=f"target for 1,000 targets ({TARGET_SECONDS_1000:.0f} s)",
    )
    axes.set_xscale("log")
    axes.set_xlabel("targets (polling agents)")
    axes.set_ylabel("seconds")
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    axes.set_title(
        f"Deployment fan-out, echo ok ({os.cpu_count()} cores, load {load})", fontsize=10
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    print(f"wrote {path}")


METHOD = """\
`tests/bench/bench_deploy.py` (`make bench-deploy`) starts its own PostgreSQL and NATS (the
embedded wheels) and release-service, deploy-orchestrator and agent-gateway each as a
separate process with its production defaults (agent-gateway's periodic health scan off, as
in bench-agents). A swarm of polling agents (`tests/bench/swarm.py`: real registration,
mutual TLS, a journal and ScriptService each) runs in the benchmark process and grows from
one size to the next. Per size, a project with one step, `echo ok` on every agent of the
role, with a rolling window as wide as the targets (the orchestrator's default is 10 targets
at once per step); each run creates a release and POSTs the deployment to release-service's
API, as the api-gateway forwards it. "Request to Success" ends at the task's completion time
as the orchestrator recorded it; "first script start" is the earliest start time in the
agents' ticket journals; both against the wall clock just before the POST (one machine, one
clock). CPU is user + system time of each server process during the run (from /proc),
divided by the number of targets. The swarm shares the 2 cores with the servers."""


def markdown(sizes: list[Size], runs: int, profile_note: str) -> str:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = load_average()
    loaded = " (under load: > 3)" if load[0] > 3 else ""
    header = (
        "| targets | request to Success | per target | first script start | last script "
        "start | CPU per target: release / orchestrator / agent-gateway | runs |\n"
        "|---|---|---|---|---|---|---|\n"
    )
    rows = "".join(
        f"| {s.targets} | {s.seconds:.2f} s | {s.seconds / s.targets * 1000:.1f} ms | "
        f"{s.first_start * 1000:.0f} ms | {s.last_start:.2f} s | "
        + " / ".join(f"{s.cpu_per_target(name) * 1000:.1f} ms" for name in SERVERS)
        + f" | {len(s.runs)} x {s.states} |\n"
        for s in sizes
    )
    if sizes and all(size.measured_idle for size in sizes):
        rows += "\nLess each process's idle CPU (measured for 5 s before each size) over the "
        rows += (
            "run's duration, per target: "
            + "; ".join(
                f"{s.targets}: "
                + " / ".join(f"{s.net_cpu_per_target(name) * 1000:.1f} ms" for name in SERVERS)
                for s in sizes
            )
            + ".\n"
        )
    verdicts = "\n".join(
        f"- {row['measure']}: {row['value']} {row['unit']} — target {row['target']}: "
        f"{'met' if row['met'] else 'NOT met'}"
        for row in comparisons(sizes)
        if row["target"] is not None
    )
    return (
        "## Deployments: one step to 10, 100 and 1,000 agents\n\n"
        f"Run {stamp}. Machine: " + "; ".join(machine()) + f"{loaded}.\n\n"
        f"{METHOD}\n\nMedians of {runs} runs per size.\n\n{header}{rows}\n{verdicts}\n"
        f"{profile_note}\n![deployment time against targets](benchmarks/deploy-fanout.png)\n"
    )


PROFILE_NOTE = Path(__file__).with_name("bench_deploy_notes.md")


LOG_LINE = re.compile(
    r"^(\d+) targets: (\w+) in ([\d.]+) s; first script start (\d+) ms, last ([\d.]+) s; "
    r"CPU (.*)$"
)


def runs_from_log(path: Path) -> list[Run]:
    """The runs a previous benchmark printed (`--from-log`): its outputs rebuilt without
    running it again, e.g. when it was stopped before its last size."""
    runs = []
    for line in path.read_text().splitlines():
        match = LOG_LINE.match(line.strip())
        if match is None:
            continue
        size, state, seconds, first, last, cpu = match.groups()
        used = {
            name: float(value)
            for name, value in re.findall(r"([\w-]+) ([\d.]+) s", cpu)
            if name in SERVERS
        }
        runs.append(
            Run(int(size), int(size), float(seconds), int(first) / 1000, float(last), state, used)
        )
    return runs


def publisher(args: argparse.Namespace, sizes: list[int]) -> Callable[[list[Run]], None]:
    """Writes the outputs after every size, so a stopped run keeps what it measured."""

    def publish(results: list[Run]) -> None:
        if args.no_write or not results:
            return
        summary = by_size(results, sizes)
        note = PROFILE_NOTE.read_text() if PROFILE_NOTE.exists() else ""
        benchreport.write_section(f"bench-{NAME}", markdown(summary, args.runs, note), args.output)
        write_json(args.output.parent / "benchmarks" / f"{NAME}.json", summary, results)
        write_plot(args.output.parent / "benchmarks" / "deploy-fanout.png", summary)

    return publish


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", default="10,100,1000")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--profile", type=Path, help="run the orchestrator under cProfile (largest size only)"
    )
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--dump", type=Path, help="write each run's task and journals here")
    parser.add_argument("--from-log", type=Path, help="rebuild the outputs from a printed run")
    args = parser.parse_args()
    sizes = sorted(int(value) for value in args.targets.split(","))
    publish = publisher(args, sizes)
    if args.from_log is not None:
        publish(runs_from_log(args.from_log))
        return
    if args.dump is not None:
        global DUMP
        args.dump.mkdir(parents=True, exist_ok=True)
        DUMP = args.dump
    raise_fd_limit()
    asyncio.run(bench(sizes, args.runs, args.profile, publish))


if __name__ == "__main__":
    main()
