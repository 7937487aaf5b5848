"""`make bench-ssh`: a script step on 50 and 200 SSH targets, against Ansible and bare asyncssh.

    .venv/bin/python tests/bench/bench_ssh.py --ansible PATH [--hosts 50 200] [--rounds 3]

`make bench-ssh` installs the pinned ansible-core into its own venv and passes its `ansible`.
The hosts are real OpenSSH sshd processes on loopback (`sshfarm.py`), 16 ports each, every
port a separate connection; the references are in `sshrefs.py`. Cephalo's number is the SSH
dispatch path of agent-gateway: one `step.dispatch` per target on JetStream, every
`step.finished` waited for, as `bench_agents.py` does for agents. Writes the `bench-ssh`
section of `docs/benchmarks.md` and `docs/benchmarks/ssh.json`.

A benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh
import httpx
from bench_agents import (  # tests/bench (this script's directory)
    Stack,
    cpu_seconds,
    create_space,
    dispatch_to_all,
    profiling,
    raise_fd_limit,
    stop_gateway,
    wait_ready,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sshfarm import BENCH_USER, SshFarm
from sshrefs import run_ansible, run_bare_asyncssh

from cephalo_common.db.migrations import upgrade
from cephalo_common.embedded import EmbeddedNats, EmbeddedPostgres, free_port, wait_for_port
from cephalo_common.testing import serving
from cephalo_dev import benchreport

ROOT = Path(__file__).resolve().parents[2]
NAME = "ssh"
ANSIBLE_REFERENCE = "ansible -m raw -f 50"
BARE_REFERENCE = "bare asyncssh fan-out"


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its reaped children and its live descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    own: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            own[int(entry.name)] = sum(int(value) for value in fields[11:15]) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += own.get(current, 0.0)
        todo.extend(children.get(current, []))
    return total


@dataclass
class Sample:
    seconds: float
    cpu: dict[str, float]


@dataclass
class Measures:
    samples: dict[tuple[str, int], list[Sample]] = field(default_factory=dict)

    def add(self, what: str, hosts: int, sample: Sample) -> None:
        self.samples.setdefault((what, hosts), []).append(sample)
        cpu = ", ".join(f"{name} {value:.1f} s" for name, value in sample.cpu.items())
        print(f"{what} on {hosts} hosts: {sample.seconds:.2f} s (CPU: {cpu})", flush=True)

    def median(self, what: str, hosts: int) -> float | None:
        samples = self.samples.get((what, hosts))
        return statistics.median(s.seconds for s in samples) if samples else None

    def cpu_median(self, what: str, hosts: int) -> dict[str, float]:
        samples = self.samples.get((what, hosts), [])
        names = samples[0].cpu.keys() if samples else []
        return {name: statistics.median(s.cpu[name] for s in samples) for name in names}


@dataclass
class Processes:
    """Whose CPU is counted: the farm's sshd trees, the gateway, Postgres and NATS."""

    farm: SshFarm
    stack: SshStack

    def snapshot(self) -> dict[str, float]:
        sshd = sum(tree_cpu(process.pid) for process in self.farm.processes)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        gateway = self.stack.running.gateway
        return {
            "sshd": sshd,
            "bench process": usage.ru_utime + usage.ru_stime,
            "reaped children": children.ru_utime + children.ru_stime,
            "agent-gateway": cpu_seconds(gateway.pid) if gateway else 0.0,
            "postgres+nats": sum(tree_cpu(pid) for pid in self.stack.service_pids),
        }


async def timed(processes: Processes, work: Awaitable[float], counted: list[str]) -> Sample:
    before = processes.snapshot()
    seconds = await work  # a coroutine: it starts here
    after = processes.snapshot()
    return Sample(seconds, {name: after[name] - before[name] for name in ["sshd", *counted]})


@dataclass
class SshStack:
    running: Stack
    account_key: str
    remote_base: str
    service_pids: list[int]


@contextlib.asynccontextmanager
async def ssh_stack(work: Path, remote_base: str, profile: Path | None) -> AsyncIterator[SshStack]:
    postgres = EmbeddedPostgres(work / "postgres", free_port(), durable=False)
    nats_server = EmbeddedNats(work / "nats", free_port())
    database_url = postgres.start()
    nats_server.start()
    running = Stack(work, database_url, nats_server.url, profile=profile)
    pids = [p.pid for p in (postgres.process, nats_server.process) if p is not None]
    stack = SshStack(running, base64.b64encode(os.urandom(32)).decode(), remote_base, pids)
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
                await start_gateway(stack)
                yield stack
            finally:
                stop_gateway(running)
    finally:
        nats_server.stop()
        postgres.stop()


async def start_gateway(stack: SshStack) -> None:
    """agent-gateway as its own process, production defaults, SSH set up."""
    running = stack.running
    port = free_port()
    prefix = "CEPHALO_AGENT_GATEWAY_"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEPHALO_")}
    env.update(
        {
            f"{prefix}PORT": str(port),
            f"{prefix}POLLING_PORT": str(free_port()),
            f"{prefix}DATA_DIR": str(running.work / "gateway"),
            f"{prefix}DATABASE__URL": running.database_url,
            f"{prefix}NATS__URL": running.nats_url,
            f"{prefix}RELEASE_SERVICE_URL": running.release_url,
            f"{prefix}HEALTH_SCAN_SECONDS": "3600",
            f"{prefix}LOG_LEVEL": "WARNING",
            f"{prefix}SSH_ACCOUNT_KEY": stack.account_key,
            f"{prefix}SSH_REMOTE_BASE": stack.remote_base,
        }
    )
    log = (running.work / "agent-gateway.log").open("ab")
    profile = running.profile
    profiler = [str(Path(__file__).with_name("profiled.py")), str(profile)] if profile else ["-m"]
    running.gateway = subprocess.Popen(
        [sys.executable, *profiler, "cephalo_agent_gateway", "api"],
        env=env,
        stdout=log,
        stderr=log,
        preexec_fn=raise_fd_limit,
    )
    running.gateway_url = f"http://127.0.0.1:{port}"
    await asyncio.to_thread(wait_for_port, port, 180)
    async with httpx.AsyncClient(base_url=running.gateway_url, timeout=60) as http:
        await wait_ready(http)


async def restart_gateway(stack: SshStack) -> None:
    """A new gateway process: its SSH connection pool starts empty."""
    stop_gateway(stack.running)
    await start_gateway(stack)


async def register_targets(stack: SshStack, farm: SshFarm, space_id: str) -> list[str]:
    """Every port registered as an SSH target (its host key captured and pinned)."""
    limit = asyncio.Semaphore(16)
    private_key = farm.client_key.export_private_key("openssh").decode()

    async def register(http: httpx.AsyncClient, index: int, port: int) -> str:
        body = {
            "name": f"ssh-{index:04d}",
            "environments": ["Production"],
            "roles": ["web"],
            "host": "127.0.0.1",
            "port": port,
            "username": farm.user,
            "private_key": private_key,
        }
        async with limit:
            response = await http.post(f"/api/v1/spaces/{space_id}/machines/ssh", json=body)
        response.raise_for_status()
        return str(response.json()["id"])

    async with httpx.AsyncClient(base_url=stack.running.gateway_url, timeout=120) as http:
        return list(
            await asyncio.gather(
                *(register(http, index, port) for index, port in enumerate(farm.ports))
            )
        )


async def cephalo_dispatch(stack: SshStack, space_id: str, machine_ids: list[str]) -> float:
    began = time.monotonic()
    with profiling(stack.running):
        await dispatch_to_all(stack.running.nats_url, space_id, machine_ids)
    return time.monotonic() - began


@dataclass
class Run:
    args: argparse.Namespace
    measures: Measures = field(default_factory=Measures)
    notes: list[str] = field(default_factory=list)


async def bench(run: Run) -> None:
    args = run.args
    work = Path(tempfile.mkdtemp(prefix="cephalo-bench-ssh-"))
    work.chmod(0o755)
    farm = SshFarm(work / "farm", max(args.hosts))
    try:
        farm.start()
        farm.write_known_hosts()
        remote_base = fresh_remote_base(farm, work)
        async with ssh_stack(work, remote_base, args.profile) as stack:
            await measure_all(run, farm, stack)
    finally:
        farm.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def fresh_remote_base(farm: SshFarm, work: Path) -> str:
    """The runner's home on the hosts, empty, so the first step pushes the runner."""
    if farm.user == BENCH_USER:
        shutil.rmtree(farm.home / ".cephalo", ignore_errors=True)
        return ".cephalo"
    base = work / "remote-home"
    base.mkdir()
    return str(base)


async def measure_all(run: Run, farm: SshFarm, stack: SshStack) -> None:
    args, measures = run.args, run.measures
    space_id = await create_space(stack.running.release_url)
    began = time.monotonic()
    machine_ids = await register_targets(stack, farm, space_id)
    run.notes.append(
        f"registering {len(machine_ids)} SSH targets (host key captured, 16 at a time) took "
        f"{time.monotonic() - began:.1f} s"
    )
    processes = Processes(farm, stack)
    first = await timed(processes, cephalo_dispatch(stack, space_id, machine_ids[:1]), [])
    print(f"registered; first step {first.seconds:.2f} s", flush=True)
    run.notes.append(f"the first step ever (one target) took {first.seconds:.2f} s")
    for hosts in args.hosts:
        targets = machine_ids[:hosts]
        for round_number in range(args.rounds):
            if args.ansible:
                sample = await timed(
                    processes,
                    run_ansible(args.ansible, farm, hosts, round_number),
                    ["reaped children"],
                )
                measures.add(ANSIBLE_REFERENCE, hosts, sample)
            sample = await timed(processes, run_bare_asyncssh(farm, hosts), ["bench process"])
            measures.add(BARE_REFERENCE, hosts, sample)
            await restart_gateway(stack)
            for what in ("cephalo, new connections", "cephalo, pooled connections"):
                sample = await timed(
                    processes,
                    cephalo_dispatch(stack, space_id, targets),
                    ["agent-gateway", "postgres+nats"],
                )
                measures.add(what, hosts, sample)
    run.notes.append(await outcomes(stack.running.database_url))
    write_outputs(run, args.output, args.json)  # only a complete run replaces the last one


async def outcomes(database_url: str) -> str:
    """Whether every Cephalo step of the run succeeded (a timing of failed steps is no
    timing at all)."""
    engine = create_async_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text(
                        "SELECT outcome, count(*) FROM agent_gateway.script_runs "
                        "GROUP BY outcome ORDER BY outcome"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    counts = {str(outcome): int(count) for outcome, count in rows}
    total = sum(counts.values())
    if set(counts) == {"Success"}:
        return f"every Cephalo step of the run succeeded ({total} steps)"
    return f"Cephalo steps by outcome: {counts} ({total} steps)"


def machine_facts() -> dict[str, Any]:
    """The shared machine description, plus the SSH client and library versions compared."""
    sshd = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    return {**benchreport.machine(), "openssh": sshd, "asyncssh": asyncssh.__version__}


def ansible_version(ansible: Path | None) -> str | None:
    if ansible is None:
        return None
    output = subprocess.run([str(ansible), "--version"], capture_output=True, text=True).stdout
    return output.splitlines()[0].strip() if output else None


def comparisons(run: Run) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    measures = run.measures
    for hosts in run.args.hosts:
        ansible = measures.median(ANSIBLE_REFERENCE, hosts)
        bare = measures.median(BARE_REFERENCE, hosts)
        for what in ("cephalo, new connections", "cephalo, pooled connections"):
            value = measures.median(what, hosts)
            if value is None:
                continue
            label = f"`echo ok` step on {hosts} SSH targets ({what})"
            rows.append(
                row(label, value, ANSIBLE_REFERENCE, ansible, "<= 0.33 of reference", 1 / 3)
            )
            rows.append(row(label, value, BARE_REFERENCE, bare, "<= 2 of reference", 2.0))
        for what in (ANSIBLE_REFERENCE, BARE_REFERENCE):
            value = measures.median(what, hosts)
            if value is not None:
                rows.append(row(f"`echo ok` on {hosts} SSH hosts ({what})", value, None, None))
        rows.extend(cpu_rows(measures, hosts))
    return rows


def cpu_per_target(measures: Measures, what: str, hosts: int) -> float | None:
    """All the CPU seconds counted for `what` (every process it needs), per host."""
    cpu = measures.cpu_median(what, hosts)
    return sum(cpu.values()) / hosts if cpu else None


def cpu_rows(measures: Measures, hosts: int) -> list[dict[str, Any]]:
    """CPU per target: the figure that holds under load (no target, compared only)."""
    rows: list[dict[str, Any]] = []
    bare = cpu_per_target(measures, BARE_REFERENCE, hosts)
    ansible = cpu_per_target(measures, ANSIBLE_REFERENCE, hosts)
    for what in ("cephalo, new connections", "cephalo, pooled connections"):
        value = cpu_per_target(measures, what, hosts)
        if value is None:
            continue
        label = f"CPU per target, `echo ok` step on {hosts} SSH targets ({what})"
        for reference, reference_value in ((ANSIBLE_REFERENCE, ansible), (BARE_REFERENCE, bare)):
            rows.append({**row(label, value, reference, reference_value), "unit": "CPU s"})
    for what, value in ((ANSIBLE_REFERENCE, ansible), (BARE_REFERENCE, bare)):
        if value is not None:
            label = f"CPU per target, `echo ok` on {hosts} SSH hosts ({what})"
            rows.append({**row(label, value, None, None), "unit": "CPU s"})
    return rows


def row(
    measure: str,
    value: float,
    reference: str | None,
    reference_value: float | None,
    target: str | None = None,
    limit: float | None = None,
) -> dict[str, Any]:
    ratio = value / reference_value if reference_value else None
    return {
        "measure": measure,
        "value": round(value, 3),
        "unit": "s",
        "reference": reference if reference_value else None,
        "reference_value": round(reference_value, 3) if reference_value else None,
        "ratio": round(ratio, 2) if ratio is not None else None,
        "target": target if ratio is not None else None,
        "met": (ratio <= limit) if ratio is not None and limit is not None else None,
    }


METHOD = """\
`tests/bench/bench_ssh.py` (`make bench-ssh`) starts real OpenSSH `sshd` processes on
127.0.0.1, 16 ports each (`tests/bench/sshfarm.py`): every port is a host of its own to any
client (its own TCP connection, key exchange, authentication and forked sshd). The account is
a non-root user with `/bin/sh` (created when run as root), key auth (ed25519), the host key
generated per run and listed for every `[127.0.0.1]:port` in a `known_hosts`. On the same hosts
in the same run, each round: **Ansible** (`ansible all -m raw -a 'echo ok' -f 50`, ansible-core
from its own venv, default settings: OpenSSH client with its default key exchange,
ControlPersist, host-key checking on; a fresh control directory per round and its masters
closed afterwards); a **bare asyncssh fan-out** (connect to every host at once, run `echo ok`,
close: the practical limit); **Cephalo**: agent-gateway (its own process, production defaults:
up to 200 SSH sessions at once, curve25519 key exchange) with every port registered as an SSH
target (host key pinned); one `step.dispatch` per target (script `echo ok`) is published on
JetStream and every `step.finished` waited for. That covers the inbox, the run row, the SSH
session, the step on the host (a plain bash script takes the shell fast path: one exec whose
shell writes the step's files and runs bash with the step's variables and helper functions;
no Python), the log lines and `step.finished` through the outbox.
"New connections" is the first dispatch after the gateway restarted (empty connection pool);
"pooled" the next one. Times are medians of the rounds; CPU seconds are of the processes
named (sshd: the sshd processes and all their children). Under load the wall-clock times
swing with the other work on the machine; the CPU seconds per target (all processes of a
tool summed, divided by the hosts) are the stable figure."""


def write_outputs(run: Run, output: Path, json_output: Path) -> None:
    load = list(os.getloadavg())
    facts = machine_facts()
    facts["ansible"] = ansible_version(run.args.ansible)
    stamp = dt.datetime.now(dt.UTC)
    rows = comparisons(run)
    document = {
        "name": NAME,
        "title": "A script step on many SSH targets: Cephalo, Ansible -m raw, bare asyncssh",
        "run_at": stamp.isoformat(timespec="seconds"),
        "machine": facts,
        "load_average": [round(value, 2) for value in load],
        "under_load": load[0] > 3,
        "rounds": run.args.rounds,
        "comparisons": rows,
        "notes": run.notes,
    }
    json_output.parent.mkdir(parents=True, exist_ok=True)
    json_output.write_text(json.dumps(document, indent=2) + "\n")
    benchreport.write_section(f"bench-{NAME}", section_text(run, facts, load, stamp, rows), output)
    print(f"wrote {output} and {json_output}", flush=True)


def section_text(
    run: Run,
    facts: dict[str, Any],
    load: list[float],
    stamp: dt.datetime,
    rows: list[dict[str, Any]],
) -> str:
    loaded = " (**under load**: over 3)" if load[0] > 3 else ""
    table = "\n".join(table_row(r) for r in rows)
    cpu_rows = "\n".join(
        f"| {what} | {hosts} | "
        + ", ".join(f"{k} {v:.1f} s" for k, v in run.measures.cpu_median(what, hosts).items())
        + " |"
        for what, hosts in run.measures.samples
    )
    machine_line = ", ".join(f"{key} {value}" for key, value in facts.items())
    notes = "".join(f"- {note}\n" for note in run.notes)
    return (
        f"## SSH targets: a script step on {', '.join(map(str, run.args.hosts))} "
        f"hosts\n\nRun {stamp:%Y-%m-%d %H:%M} UTC, {run.args.rounds} rounds. Machine: "
        f"{machine_line}. Load average {', '.join(f'{v:.1f}' for v in load)}{loaded}; the "
        f"machine is shared.\n\n{METHOD}\n\n"
        "| measure | value | reference | reference value | ratio | target | met |\n"
        f"|---|---|---|---|---|---|---|\n{table}\n\n"
        f"| what | hosts | CPU seconds (median per round) |\n|---|---|---|\n{cpu_rows}\n\n"
        f"{notes}"
    )


def table_row(r: dict[str, Any]) -> str:
    unit = r["unit"]
    digits = 3 if unit == "CPU s" else 2
    reference_value = (
        "" if r["reference_value"] is None else f"{r['reference_value']:.{digits}f} {unit}"
    )
    ratio = "" if r["ratio"] is None else str(r["ratio"])
    met = "" if r["met"] is None else ("yes" if r["met"] else "no")
    return (
        f"| {r['measure']} | {r['value']:.{digits}f} {unit} | {r['reference'] or ''} | "
        f"{reference_value} | "
        f"{ratio} | {r['target'] or ''} | {met} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ansible", type=Path, help="the `ansible` to compare with")
    parser.add_argument("--hosts", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--json", type=Path, default=ROOT / "docs" / "benchmarks" / f"{NAME}.json")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--profile", type=Path, help="run agent-gateway under cProfile, writing stats here"
    )
    args = parser.parse_args()
    if args.ansible is not None:
        args.ansible = args.ansible.resolve()
    raise_fd_limit()
    run = Run(args)
    asyncio.run(bench(run))


if __name__ == "__main__":
    main()
