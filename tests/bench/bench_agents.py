"""`make bench-agents`: thousands of agents against one agent-gateway process.

    .venv/bin/python tests/bench/bench_agents.py [--polling 1000] [--listening 100]

Starts its own PostgreSQL and NATS (the embedded wheels), release-service in this process,
agent-gateway as a separate process (so its memory is measured alone), and a swarm of real
agents in this process (`swarm.py`: own certificate, data directory and journal each, real
mutual TLS). Measures, for N polling agents: registration time, time until all are
connected, the gateway's idle memory per connection, and the time for a trivial script
dispatched to every agent to finish everywhere; then the same dispatch for M listening
agents. Writes the results into the "Agents" section of `docs/benchmarks.md`.

A benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import nats
from nats.aio.msg import Msg
from swarm import Swarm  # tests/bench (this script's directory)

from cephalo_common.contracts import STEP_DISPATCH, STEP_FINISHED, StepDispatchV1, StepFinishedV1
from cephalo_common.db.migrations import upgrade
from cephalo_common.embedded import EmbeddedNats, EmbeddedPostgres, free_port, wait_for_port
from cephalo_common.ids import uuid7
from cephalo_common.messaging.envelope import Envelope, new_envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.settings import NatsSettings
from cephalo_common.testing import serving
from cephalo_common.urls import LOOPBACK
from cephalo_dev import benchreport

ROOT = Path(__file__).resolve().parents[2]
NAME = "agents"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def swarm_cpu_seconds() -> float:
    """This process's CPU time and its reaped children's: the agents and the scripts they ran."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Results:
    lines: list[tuple[str, str]] = field(default_factory=list)
    comparisons: list[benchreport.Comparison] = field(default_factory=list)

    def add(self, what: str, value: str) -> None:
        self.lines.append((what, value))
        print(f"{what}: {value}", flush=True)

    def measure(
        self, what: str, value: float, unit: str, target: str | None = None, met: bool | None = None
    ) -> None:
        """A row of `docs/benchmarks/agents.json` (no reference: nothing else is measured)."""
        self.comparisons.append(
            benchreport.Comparison(what, round(value, 3), unit, target=target, met=met)
        )


# The targets hold for the full fleet; a smaller run reports them without a verdict.
TARGET_AGENTS = 1000
CONNECT_TARGET_SECONDS = 30.0
IDLE_TARGET_BYTES = 100_000
DISPATCH_TARGET_SECONDS = 20.0
SCRIPT = "echo ok"


def verdict(n: int, holds: bool) -> bool | None:
    return holds if n >= TARGET_AGENTS else None


@dataclass
class Stack:
    work: Path
    database_url: str
    nats_url: str
    release_url: str = ""
    gateway_url: str = ""
    polling_port: int = 0
    gateway: subprocess.Popen[bytes] | None = None
    profile: Path | None = None


@contextlib.asynccontextmanager
async def stack(work: Path, profile: Path | None = None) -> AsyncIterator[Stack]:
    postgres = EmbeddedPostgres(work / "postgres", free_port(), durable=False)
    nats_server = EmbeddedNats(work / "nats", free_port())
    database_url = postgres.start()
    nats_server.start()
    running = Stack(work, database_url, nats_server.url, profile=profile)
    try:
        await asyncio.to_thread(upgrade, "cephalo_release", database_url)
        await asyncio.to_thread(upgrade, "cephalo_agent_gateway", database_url)
        from cephalo_release.app import create_app as create_release_app
        from cephalo_release.settings import ReleaseSettings

        release = create_release_app(
            ReleaseSettings(
                database={"url": database_url},
                nats={"url": nats_server.url},
                run_workers=False,
                log_level="WARNING",
            )
        )
        async with serving(release, lifespan="on") as release_url:
            running.release_url = release_url
            try:
                start_gateway(running, profile)
                yield running
            finally:
                stop_gateway(running)
    finally:
        nats_server.stop()
        postgres.stop()


def start_gateway(running: Stack, profile: Path | None = None) -> None:
    port, polling_port = free_port(), free_port()
    prefix = "CEPHALO_AGENT_GATEWAY_"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEPHALO_")}
    env.update(
        {
            f"{prefix}PORT": str(port),
            f"{prefix}POLLING_PORT": str(polling_port),
            f"{prefix}DATA_DIR": str(running.work / "gateway"),
            f"{prefix}DATABASE__URL": running.database_url,
            f"{prefix}NATS__URL": running.nats_url,
            f"{prefix}RELEASE_SERVICE_URL": running.release_url,
            f"{prefix}HEALTH_SCAN_SECONDS": "3600",
            f"{prefix}LOG_LEVEL": "WARNING",
            f"{prefix}OUTBOUND__ALLOW": json.dumps(list(LOOPBACK)),  # the listening swarm
        }
    )
    log = (running.work / "agent-gateway.log").open("ab")
    profiler = [str(Path(__file__).with_name("profiled.py")), str(profile)] if profile else ["-m"]
    running.gateway = subprocess.Popen(
        [sys.executable, *profiler, "cephalo_agent_gateway", "api"],
        env=env,
        stdout=log,
        stderr=log,
        preexec_fn=raise_fd_limit,
    )
    running.gateway_url = f"http://127.0.0.1:{port}"
    running.polling_port = polling_port
    wait_for_port(port, timeout=180)


@contextlib.contextmanager
def profiling(running: Stack) -> Iterator[None]:
    """Profile the gateway meanwhile, when it runs under `profiled.py` (`--profile`)."""
    if running.profile is None or running.gateway is None:
        yield
        return
    running.gateway.send_signal(signal.SIGUSR1)
    try:
        yield
    finally:
        running.gateway.send_signal(signal.SIGUSR2)


def stop_gateway(running: Stack) -> None:
    if running.gateway is not None:
        running.gateway.terminate()
        try:
            running.gateway.wait(timeout=30)
        except subprocess.TimeoutExpired:
            running.gateway.kill()


async def wait_ready(http: httpx.AsyncClient) -> None:
    async with asyncio.timeout(60):
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get("/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)


async def create_space(release_url: str) -> str:
    async with httpx.AsyncClient(base_url=release_url, timeout=30) as http:
        slug = f"bench-{uuid7().hex[-8:]}"
        space = (await http.post("/api/v1/spaces", json={"name": slug, "slug": slug})).json()
        response = await http.post(
            f"/api/v1/spaces/{space['id']}/environments", json={"name": "Production"}
        )
        response.raise_for_status()
        return str(space["id"])


async def dispatch_to_all(
    nats_url: str, space_id: str, machine_ids: list[str], script: str = SCRIPT
) -> list[float]:
    """Publish one trivial step per machine; return each run's dispatch-to-finish seconds."""
    finished: dict[str, float] = {}
    done = asyncio.Event()
    connection = await nats.connect(nats_url)

    async def on_finished(message: Msg) -> None:
        event = Envelope.from_bytes(message.data).payload(StepFinishedV1)
        finished[event.ticket] = time.monotonic()
        if len(finished) >= len(machine_ids):
            done.set()

    await connection.subscribe(STEP_FINISHED.subject(space_id), cb=on_finished)
    await connection.flush()
    broker = NatsBroker(NatsSettings(url=nats_url), name="bench")
    await broker.start()
    await broker.wait_connected(30)
    sent: dict[str, float] = {}
    try:
        for machine_id in machine_ids:
            ticket = f"bench-{uuid7().hex}"
            data = StepDispatchV1(
                ticket=ticket,
                task_id=str(uuid7()),
                step_run_id=str(uuid7()),
                machine_id=machine_id,
                script_body=script,
            )
            envelope = new_envelope(
                source="cephalo://bench", type=STEP_DISPATCH.type, space=space_id, data=data
            )
            sent[ticket] = time.monotonic()
            await broker.publish(STEP_DISPATCH.subject(space_id), envelope)
        await asyncio.wait_for(done.wait(), 600)
    finally:
        await broker.close()
        await connection.close()
    return [finished[ticket] - started for ticket, started in sent.items()]


def cpu_split(gateway_pid: int, before: tuple[float, float]) -> str:
    gateway = cpu_seconds(gateway_pid) - before[0]
    swarm = swarm_cpu_seconds() - before[1]
    return f"{gateway:.1f} s / {swarm:.1f} s"


def summary(latencies: list[float]) -> str:
    ordered = sorted(latencies)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"p50 {statistics.median(ordered):.2f} s, p95 {p95:.2f} s, max {ordered[-1]:.2f} s"


async def bench(
    polling: int,
    listening: int,
    results: Results,
    profile: Path | None = None,
    script: str = SCRIPT,
) -> None:
    work = Path(tempfile.mkdtemp(prefix="cephalo-bench-agents-"))
    work.chmod(0o755)
    try:
        async with stack(work, profile) as running:
            assert running.gateway is not None
            async with httpx.AsyncClient(base_url=running.gateway_url, timeout=60) as http:
                await wait_ready(http)
            gateway_pid = running.gateway.pid
            space_id = await create_space(running.release_url)
            swarm = Swarm(work / "swarm", running.gateway_url, space_id)
            try:
                await bench_polling(swarm, running, space_id, gateway_pid, polling, results, script)
                if listening:
                    await bench_listening(
                        swarm, running, space_id, gateway_pid, listening, results, script
                    )
            finally:
                await swarm.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def bench_polling(
    swarm: Swarm,
    running: Stack,
    space_id: str,
    gateway_pid: int,
    n: int,
    results: Results,
    script: str = SCRIPT,
) -> None:
    idle_gateway = rss_mib(gateway_pid)
    idle_swarm = rss_mib(os.getpid())
    began = time.monotonic()
    agents = await swarm.add(n, mode="polling", prefix="poll")
    registered = time.monotonic() - began
    results.add(f"register {n} polling agents (16 at a time)", f"{registered:.1f} s")
    results.measure(f"register {n} polling agents", registered, "s")

    began = time.monotonic()
    await swarm.start(agents)
    await swarm.wait_connected(agents)
    connect = time.monotonic() - began
    results.add(f"connect {n} polling agents (mutual TLS + WebSocket)", f"{connect:.1f} s")
    results.measure(
        f"connect {n} polling agents",
        connect,
        "s",
        f"<= {CONNECT_TARGET_SECONDS:g} s for {TARGET_AGENTS}",
        verdict(n, connect <= CONNECT_TARGET_SECONDS),
    )
    await asyncio.sleep(5)  # idle: keep-alive pings only
    per_connection = (rss_mib(gateway_pid) - idle_gateway) * 1024 / n
    per_agent = (rss_mib(os.getpid()) - idle_swarm) * 1024 / n
    results.add("agent-gateway idle memory per polling connection", f"{per_connection:.0f} KiB")
    results.measure(
        "agent-gateway idle memory per polling connection",
        per_connection,
        "KiB",
        f"< {IDLE_TARGET_BYTES // 1000} KB",
        per_connection * 1024 < IDLE_TARGET_BYTES,
    )
    results.add(
        "swarm memory per agent (client side, with its ScriptService)", f"{per_agent:.0f} KiB"
    )

    began = time.monotonic()
    cpu = cpu_seconds(gateway_pid), swarm_cpu_seconds()
    with profiling(running):
        latencies = await dispatch_to_all(
            running.nats_url, space_id, [member.machine_id for member in agents], script
        )
    total = time.monotonic() - began
    gateway_cpu = cpu_seconds(gateway_pid) - cpu[0]
    swarm_cpu = swarm_cpu_seconds() - cpu[1]
    results.add(f"`echo ok` dispatched to {n} polling agents, all finished", f"{total:.1f} s")
    results.add("  per run, dispatch to step.finished", summary(latencies))
    results.add("  CPU used meanwhile: agent-gateway / swarm", cpu_split(gateway_pid, cpu))
    results.add("  agent-gateway CPU per dispatch", f"{gateway_cpu / n * 1000:.1f} ms")
    results.add("  agents' CPU per dispatch (swarm and scripts)", f"{swarm_cpu / n * 1000:.1f} ms")
    results.measure(
        f"`echo ok` on {n} polling agents, all finished",
        total,
        "s",
        f"<= {DISPATCH_TARGET_SECONDS:g} s for {TARGET_AGENTS}",
        verdict(n, total <= DISPATCH_TARGET_SECONDS),
    )
    results.measure("agent-gateway CPU per polling dispatch", gateway_cpu / n * 1000, "ms")
    results.measure("agents' CPU per polling dispatch", swarm_cpu / n * 1000, "ms")


async def bench_listening(
    swarm: Swarm,
    running: Stack,
    space_id: str,
    gateway_pid: int,
    m: int,
    results: Results,
    script: str = SCRIPT,
) -> None:
    began = time.monotonic()
    agents = await swarm.add(m, mode="listening", prefix="listen")
    results.add(f"register {m} listening agents", f"{time.monotonic() - began:.1f} s")
    await swarm.start(agents)
    await swarm.wait_connected(agents)
    before = rss_mib(gateway_pid)
    began = time.monotonic()
    cpu = cpu_seconds(gateway_pid), swarm_cpu_seconds()
    latencies = await dispatch_to_all(
        running.nats_url, space_id, [member.machine_id for member in agents], script
    )
    total = time.monotonic() - began
    gateway_cpu = cpu_seconds(gateway_pid) - cpu[0]
    swarm_cpu = swarm_cpu_seconds() - cpu[1]
    results.add(f"`echo ok` dispatched to {m} listening agents, all finished", f"{total:.1f} s")
    results.add("  per run, dispatch to step.finished", summary(latencies))
    results.add("  CPU used meanwhile: agent-gateway / swarm", cpu_split(gateway_pid, cpu))
    results.add("  agent-gateway CPU per dispatch", f"{gateway_cpu / m * 1000:.1f} ms")
    results.measure(f"`echo ok` on {m} listening agents, all finished", total, "s")
    results.measure("agent-gateway CPU per listening dispatch", gateway_cpu / m * 1000, "ms")
    results.measure("agents' CPU per listening dispatch", swarm_cpu / m * 1000, "ms")
    grown = (rss_mib(gateway_pid) - before) * 1024 / m
    results.add(
        "agent-gateway memory per listening agent (pooled HTTPS client)", f"{grown:.0f} KiB"
    )


METHOD = """\
`tests/bench/bench_agents.py` (`make bench-agents`) starts its own PostgreSQL and NATS (the
embedded wheels), release-service in the benchmark process, and agent-gateway as a separate
process with its production defaults (one uvicorn worker; agents with
`script-status-wait/v1` answer `start_script` once the script is done, within
`START_WAIT_SECONDS` 2, and hold `get_status` open up to `STATUS_WAIT_SECONDS` 10; health
checks disabled so they do not mix into the numbers). The agents form a swarm in the
benchmark process (`tests/bench/swarm.py`): each has its own certificate, data directory,
journal and ScriptService, registers with the real `register()` and speaks the real protocol
over real mutual TLS. Memory is the gateway's resident set growth divided by the number of
agents, after 5 s of idle connections. The dispatch publishes one `step.dispatch` per agent
(script `echo ok`) on JetStream and waits for every `step.finished`: the time covers the
gateway's whole path (inbox, run row, capabilities, start, complete, outbox) and
the agent's (spawn bash, journal, answer). `echo ok` uses nothing of the step runner, so
it runs as a plain shell script (no Python interpreter per step). Agents and gateway share
the same cores, so the numbers are a floor for what one gateway process sustains, not a ceiling. "CPU per
dispatch" is the gateway's CPU seconds during the dispatch divided by the runs, and the
agents' the swarm process's with the scripts it ran (reaped children): the figures to
compare across runs on a shared machine (wall times swing with the load)."""


def write_results(output: Path, json_output: Path, title: str, results: Results) -> None:
    """The section of `docs/benchmarks.md` and `docs/benchmarks/agents.json`, written only
    once the run is complete (a failed run leaves the previous ones as they were)."""
    load = benchreport.load_average()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    under = load[0] > benchreport.UNDER_LOAD
    note = (
        " Under load: the wall times are inflated; the CPU per dispatch is the stable figure."
        if under
        else ""
    )
    rows = "\n".join(f"| {what} | {value} |" for what, value in results.lines)
    body = (
        f"## {title}\n\nRun {stamp}. Machine: "
        + benchreport.describe_machine(benchreport.machine(), load)
        + f".{note}\n\n{METHOD}\n\n| measure | result |\n|---|---|\n{rows}\n"
    )
    benchreport.write_section(f"bench-{NAME}", body, output)
    benchreport.write_report(
        NAME, title, results.comparisons, json_output.parent, extra={"under_load": under}
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--polling", type=int, default=1000)
    parser.add_argument("--listening", type=int, default=100)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--json-output", type=Path, default=ROOT / "docs" / "benchmarks" / "agents.json"
    )
    parser.add_argument(
        "--script", default=SCRIPT, help="the script dispatched (to compare paths, not for docs)"
    )
    parser.add_argument(
        "--profile", type=Path, help="run agent-gateway under cProfile, writing stats here"
    )
    args = parser.parse_args()
    raise_fd_limit()
    results = Results()
    asyncio.run(bench(args.polling, args.listening, results, args.profile, args.script))
    title = f"Agents: {args.polling} polling, {args.listening} listening"
    write_results(args.output, args.json_output, title, results)


if __name__ == "__main__":
    main()
