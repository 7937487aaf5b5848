"""`make bench-load` (R10): many concurrent API clients against the whole stack for a minute.

    .venv/bin/python tests/bench/bench_load.py [--clients 1000] [--seconds 60] [--runs 3]

Starts its own PostgreSQL and NATS (the embedded wheels) and every service as a real process
(`cephalo_dev.stack.Stack`), seeds a few projects through the public API, then runs N
asyncio clients (httpx, one keep-alive connection each) in this process for the given time,
each in a closed loop: 80 % reads (a page of projects, a project's releases, the
environments), 15 % release creation, 5 % deployments of a project's release (projects
have an empty deployment process: the load is the API and the task path, not scripts).

Each client sends its own address in `X-Forwarded-For` (the gateway trusts loopback as its
proxy), so the per-address quota applies per client: the gateway runs with a per-address
quota of QUOTA_PER_MINUTE (burst QUOTA_BURST) and the per-user quota lifted (every client
uses the one administrator key). The clients of the over-quota group share one address and
must get 429 with `Retry-After` (they then wait as told); every other client stays under
its quota. Reported: throughput, p50/p95/p99 per kind of request, 5xx (must be 0),
timeouts, 429s of each group, server CPU per request and each service's resident memory.
A benchmark, not a test: nothing here asserts a timing. A failed run writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import random
import shutil
import ssl
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

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
    cpu_seconds,
    embedded_servers,
    free_ports,
    rss_mib,
)
from cephalo_dev.stack import ServiceSpec, Stack

SPACE = "/api/v1/spaces/default"
PROJECTS = 20
QUOTA_PER_MINUTE = 60
QUOTA_BURST = 20
OVER_QUOTA_CLIENTS = 50  # more than the burst: their first requests alone exceed it
OVER_QUOTA_ADDRESS = "192.0.2.1"  # TEST-NET-1: shared by the over-quota group
REQUEST_TIMEOUT = 30.0
THINK_SECONDS = 2.0  # a user's mean pause between two requests
READ_P95_MS, READ_P99_MS = 300.0, 1000.0
RSS_LIMIT_MIB = 1024
LOGS = Path(__file__).resolve().parents[2] / ".cephalo" / "bench-load-logs"  # the last run's
MIX = (("read", 80), ("release", 15), ("deploy", 5))


class LoadStack(Stack):
    """The stack with a per-address quota that trusts loopback's X-Forwarded-For, and the
    per-user quota lifted (all clients share the administrator key)."""

    def service_env(self, spec: ServiceSpec) -> dict[str, str]:
        env = super().service_env(spec)
        if spec.name == "api-gateway":
            prefix = "CEPHALO_GATEWAY_"
            env.update(
                {
                    prefix + "TRUSTED_PROXIES": json.dumps(["127.0.0.1/32"]),
                    prefix + "RATE_LIMITS__PER_IP_PER_MINUTE": str(QUOTA_PER_MINUTE),
                    prefix + "RATE_LIMITS__PER_IP_BURST": str(QUOTA_BURST),
                    prefix + "RATE_LIMITS__PER_USER_PER_MINUTE": "1000000000",
                    prefix + "RATE_LIMITS__PER_USER_BURST": "1000000000",
                }
            )
        return env


@dataclass
class Sample:
    kind: str
    status: int  # 0: no answer (timeout or connection error)
    ms: float
    over_quota_client: bool
    retry_after: bool = False


@dataclass
class Seeded:
    environment_id: str
    projects: list[str]
    releases: dict[str, str] = field(default_factory=dict)  # project → a release to deploy


@dataclass
class RunResult:
    seconds: float
    samples: list[Sample]
    cpu_seconds: float
    rss_mib: dict[str, float]

    def answered(self, kind: str | None = None) -> list[Sample]:
        return [
            s
            for s in self.samples
            if s.status and s.status != 429 and (kind is None or s.kind == kind)
        ]

    def percentile(self, q: float, kind: str | None = None) -> float:
        values = sorted(s.ms for s in self.answered(kind))
        if not values:
            return float("nan")
        return values[min(len(values) - 1, int(q * len(values)))]

    @property
    def throughput(self) -> float:
        return len(self.answered()) / self.seconds

    def count(self, predicate: Any) -> int:
        return sum(1 for s in self.samples if predicate(s))

    @property
    def cpu_ms_per_request(self) -> float:
        return 1000 * self.cpu_seconds / max(len(self.answered()), 1)


async def seed(api: httpx.AsyncClient) -> Seeded:
    environment = await api.post(f"{SPACE}/environments", json={"name": "Load"})
    environment.raise_for_status()
    phase = {"name": "All", "optional_environment_ids": [environment.json()["id"]]}
    lifecycle = await api.post(f"{SPACE}/lifecycles", json={"name": "Load", "phases": [phase]})
    lifecycle.raise_for_status()
    seeded = Seeded(environment.json()["id"], [])
    step = {"name": "Noop", "target_roles": ["load-none"], "script_body": "true"}
    for n in range(1, PROJECTS + 1):
        body = {"name": f"Load Project {n:03d}", "lifecycle": "Load"}
        project_id = (await _ok(api, "POST", f"{SPACE}/projects", body))["id"]
        process = f"{SPACE}/projects/{project_id}/deployment-process"
        await _ok(api, "PUT", process, {"steps": [step]})
        releases = f"{SPACE}/projects/{project_id}/releases"
        release = await _ok(api, "POST", releases, {"version": "1.0.0"})
        seeded.projects.append(project_id)
        seeded.releases[project_id] = release["id"]
    return seeded


async def _ok(api: httpx.AsyncClient, method: str, url: str, body: Any) -> Any:
    """The seeding client is held to the per-address quota too: it waits when told."""
    for _ in range(30):
        response = await api.request(method, url, json=body)
        if response.status_code != 429:
            break
        await asyncio.sleep(float(response.headers.get("Retry-After", "1")))
    if response.status_code >= 400:
        raise RuntimeError(f"{response.request.url}: {response.status_code} {response.text[:500]}")
    return response.json()


class Client:
    """One simulated API user: its own connection, its own address, a closed loop."""

    versions = itertools.count(1)

    def __init__(self, number: int, over_quota: bool, seeded: Seeded, headers: dict[str, str]):
        self.over_quota = over_quota
        address = OVER_QUOTA_ADDRESS if over_quota else f"10.{number // 250}.{number % 250}.7"
        self.headers = {**headers, "X-Forwarded-For": address}
        self.seeded = seeded
        self.random = random.Random(number)

    def request(self) -> tuple[str, str, str, dict[str, Any] | None]:
        kind = self.random.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
        project = self.random.choice(self.seeded.projects)
        if kind == "release":
            version = f"2.0.{next(self.versions)}"
            return kind, "POST", f"{SPACE}/projects/{project}/releases", {"version": version}
        if kind == "deploy":
            body = {
                "release_id": self.seeded.releases[project],
                "environment_id": self.seeded.environment_id,
            }
            return kind, "POST", f"{SPACE}/deployments", body
        path = self.random.choice(
            [
                f"{SPACE}/projects?take=30",
                f"{SPACE}/projects/{project}/releases",
                f"{SPACE}/environments",
            ]
        )
        return kind, "GET", path, None

    def connection(self, base_url: str, tls: ssl.SSLContext) -> httpx.AsyncClient:
        """One keep-alive connection; `tls` shared, as building a context per client costs
        more CPU than a request (plain HTTP here: httpx builds one all the same)."""
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        return httpx.AsyncClient(
            base_url=base_url,
            headers=self.headers,
            limits=limits,
            timeout=REQUEST_TIMEOUT,
            verify=tls,
        )

    async def run(
        self, http: httpx.AsyncClient, deadline: float, think: float, samples: list[Sample]
    ) -> None:
        """Request, then think (exponential, mean `think` seconds), until the deadline; after
        a 429, wait as `Retry-After` says instead."""
        while time.monotonic() < deadline:
            kind, method, path, body = self.request()
            began = time.perf_counter()
            try:
                response = await http.request(method, path, json=body)
                status = response.status_code
            except httpx.HTTPError:
                status, response = 0, None
            sample = Sample(kind, status, (time.perf_counter() - began) * 1000, self.over_quota)
            samples.append(sample)
            if status == 429 and response is not None:
                wait = response.headers.get("Retry-After")
                sample.retry_after = wait is not None
                pause = float(wait) if wait and wait.isdigit() else 1.0
            else:
                pause = self.random.expovariate(1 / think) if think > 0 else 0.0
            await asyncio.sleep(max(0.0, min(pause, deadline - time.monotonic())))


async def one_run(
    stack: Stack, seeded: Seeded, clients: int, seconds: int, think: float
) -> RunResult:
    pids = [process.pid for process in stack.processes.values()]
    samples: list[Sample] = []
    crowd = [Client(n, n < OVER_QUOTA_CLIENTS, seeded, stack.auth_headers) for n in range(clients)]
    tls = httpx.create_ssl_context()
    async with contextlib.AsyncExitStack() as connections:
        opened = [
            await connections.enter_async_context(client.connection(stack.gateway_url, tls))
            for client in crowd
        ]
        before = cpu_seconds(pids)
        began = time.monotonic()
        deadline = began + seconds
        await asyncio.gather(
            *(
                client.run(http, deadline, think, samples)
                for client, http in zip(crowd, opened, strict=True)
            )
        )
        took = time.monotonic() - began
    used = cpu_seconds(pids) - before
    memory = {name: rss_mib(process.pid) for name, process in stack.processes.items()}
    result = RunResult(took, samples, used, memory)
    print(
        f"{clients} clients, {took:.0f} s: {result.throughput:.0f} answered req/s, "
        f"p50 {result.percentile(0.5):.0f} ms, p95 {result.percentile(0.95):.0f} ms, "
        f"p99 {result.percentile(0.99):.0f} ms, "
        f"5xx {result.count(lambda s: s.status >= 500)}, "
        f"timeouts {result.count(lambda s: s.status == 0)}, "
        f"429 over-quota {result.count(lambda s: s.status == 429 and s.over_quota_client)}, "
        f"429 others {result.count(lambda s: s.status == 429 and not s.over_quota_client)}, "
        f"{result.cpu_ms_per_request:.1f} CPU ms/request",
        flush=True,
    )
    return result


async def measure(
    stack: Stack, clients: int, seconds: int, runs: int, think: float
) -> list[RunResult]:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=stack.auth_headers, timeout=60
    ) as api:
        seeded = await seed(api)
    await one_run(stack, seeded, min(clients, 50), 5, think)  # warm-up
    return [await one_run(stack, seeded, clients, seconds, think) for _ in range(runs)]


def bench(clients: int, seconds: int, runs: int, think: float) -> list[RunResult]:
    with tempfile.TemporaryDirectory(prefix="bench-load-") as scratch:
        work = Path(scratch)
        with embedded_servers(work) as (database_url, nats_url):
            stack = LoadStack(work / "stack", database_url, nats_url, free_ports())
            stack.migrate()
            stack.start_services()
            try:
                asyncio.run(stack.wait_ready(timeout=READY_SECONDS))
                return asyncio.run(measure(stack, clients, seconds, runs, think))
            finally:
                stack.stop()
                shutil.rmtree(LOGS, ignore_errors=True)
                shutil.copytree(stack.logs_dir, LOGS, dirs_exist_ok=True)
                print(f"service logs kept in {LOGS}")


def median(results: list[RunResult], figure: Any) -> float:
    """The median over the runs that have the figure (a run that answered nothing has no
    percentiles)."""
    values = [value for value in (figure(result) for result in results) if not math.isnan(value)]
    return float(statistics.median(values)) if values else float("nan")


def total(results: list[RunResult], predicate: Any) -> int:
    return sum(result.count(predicate) for result in results)


METHOD = """\
`tests/bench/bench_load.py` (`make bench-load`) starts its own PostgreSQL and NATS and every
service as a real process (production defaults: one uvicorn worker each), seeds {projects}
projects with a release each, and runs {clients} asyncio clients (httpx, one keep-alive
connection each, all in one process on the same cores as the servers) for {seconds} s, each
in a closed loop with a think time (exponential, mean {think:g} s) between requests: 80 %
reads (a page of 30 projects, a project's releases, the environments), 15 % release
creation, 5 % deployments (the one step targets a role no machine has, so a deployment is
the API, the event and the task, no script). Each client sends its own address in
`X-Forwarded-For` (loopback is the gateway's trusted proxy): the gateway's per-address quota
({quota}/min, burst {burst}) applies per client, the per-user quota is lifted (every client
uses the administrator key). The {over} clients of the over-quota group share one address;
on a 429 a client waits as `Retry-After` says. {runs} runs after a 5 s warm-up with 50
clients; figures are medians of the runs. Latencies are of answered requests (not 429s);
a request unanswered after {timeout:.0f} s counts as a timeout. Server CPU is the user +
system time of the five service processes per answered request, from /proc; the load
generator's own CPU is not in it but competes for the same cores, and its scheduling delay
is part of every latency (one Python process drives all the clients)."""


FINDINGS = """\
What the first runs showed (December 2026, 2 cores shared with other work, load average
12-16): the stack answers a few requests per second to 1,000 clients, so most requests wait
in the servers' queues for tens of seconds and many reach the client's 30 s timeout. The
api-gateway authenticates every request against PostgreSQL (the API key, its user, roles and
teams: five round trips before it forwards, see bench-api) and holds a pooled connection to
do it; with 1,000 requests in flight its pool (10 + 10 overflow, 5 s wait) ran dry and the
waiting requests got a 500 and a dropped connection. They now get 503 `busy` with
`Retry-After` (cephalo_common's problem handlers), which is still a 5xx: what R10 needs is
less work per request (an in-process cache of the API key's principal for a few seconds, as
bench-api says), and admission control that answers 503 early instead of queueing for tens
of seconds. The gateway also keeps working on requests whose client has given up (30 s):
in one run of three the clients' requests all timed out while the services were busy with
abandoned ones (goodput zero, a congestion collapse). Service memory stayed flat (about
120-160 MiB each). Server CPU per answered request is the figure to compare between
runs; latency and throughput here mostly measure the machine's other load."""


def report(results: list[RunResult], clients: int, seconds: int, think: float) -> None:
    info, load = machine(), load_average()
    kinds = [kind for kind, _ in MIX]
    five_xx = total(results, lambda s: s.status >= 500)
    timeouts = total(results, lambda s: s.status == 0)
    limited = total(results, lambda s: s.status == 429 and s.over_quota_client)
    limited_with_header = total(
        results, lambda s: s.status == 429 and s.over_quota_client and s.retry_after
    )
    wrongly_limited = total(results, lambda s: s.status == 429 and not s.over_quota_client)
    read_p95 = median(results, lambda r: r.percentile(0.95, "read"))
    read_p99 = median(results, lambda r: r.percentile(0.99, "read"))
    rss = {
        name: max(result.rss_mib.get(name, float("nan")) for result in results)
        for name in results[0].rss_mib
    }
    rows = "\n".join(
        f"| {kind} | {median(results, lambda r, k=kind: len(r.answered(k)) / r.seconds):,.0f} "
        f"| {median(results, lambda r, k=kind: r.percentile(0.5, k)):.0f} ms "
        f"| {median(results, lambda r, k=kind: r.percentile(0.95, k)):.0f} ms "
        f"| {median(results, lambda r, k=kind: r.percentile(0.99, k)):.0f} ms |"
        for kind in [*kinds, None]
    ).replace("| None |", "| all |")
    memory = ", ".join(f"{name} {value:.0f} MiB" for name, value in rss.items())
    under = (
        " Numbers taken under load (load average > 3): CPU ms per request is the stable figure."
        if load[0] > 3
        else ""
    )
    body = (
        f"## Load: {clients} concurrent API clients for {seconds} s (R10)\n\n"
        f"Run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Machine: "
        f"{describe_machine(info, load)}.{under}\n\n"
        + METHOD.format(
            projects=PROJECTS, clients=clients, seconds=seconds, quota=QUOTA_PER_MINUTE,
            burst=QUOTA_BURST, over=OVER_QUOTA_CLIENTS, runs=len(results), timeout=REQUEST_TIMEOUT,
            think=think,
        )
        + "\n\n| requests | answered req/s | p50 | p95 | p99 |\n|---|---|---|---|---|\n"
        + rows
        + f"\n\n5xx: **{five_xx}** (target 0). Timeouts: {timeouts}. Over-quota group: "
        f"{limited} answers 429, {limited_with_header} of them with `Retry-After`; 429s to clients "
        f"under their quota: {wrongly_limited}. Server CPU per answered request: "
        f"{median(results, lambda r: r.cpu_ms_per_request):.1f} ms. Resident memory after "
        f"the runs (largest): {memory} (target < {RSS_LIMIT_MIB} MiB each). Targets for reads "
        f"(R10, 2 cores): p95 < {READ_P95_MS:.0f} ms ({read_p95:.0f} ms), p99 < "
        f"{READ_P99_MS:.0f} ms ({read_p99:.0f} ms).\n\n"
        + FINDINGS
    )  # fmt: skip
    comparisons = [
        Comparison("answered requests", round(median(results, lambda r: r.throughput)), "req/s"),
        Comparison("reads p95", round(read_p95), "ms", target=f"< {READ_P95_MS:.0f} ms",
                   met=read_p95 < READ_P95_MS),
        Comparison("reads p99", round(read_p99), "ms", target=f"< {READ_P99_MS:.0f} ms",
                   met=read_p99 < READ_P99_MS),
        Comparison("all requests p50", round(median(results, lambda r: r.percentile(0.5))), "ms"),
        Comparison("5xx responses", five_xx, "count", target="0", met=five_xx == 0),
        Comparison("over-quota 429 with Retry-After", limited_with_header, "count",
                   target="> 0, every 429 with Retry-After",
                   met=limited > 0 and limited_with_header == limited and wrongly_limited == 0),
        Comparison("server CPU per answered request",
                   round(median(results, lambda r: r.cpu_ms_per_request), 2), "CPU ms"),
        Comparison("largest service RSS", round(max(rss.values())), "MiB",
                   target=f"< {RSS_LIMIT_MIB} MiB", met=max(rss.values()) < RSS_LIMIT_MIB),
    ]  # fmt: skip
    write_section("bench-load", body)
    write_report(
        "load",
        f"Load: {clients} concurrent API clients",
        comparisons,
        extra={
            "runs": [
                {
                    "seconds": round(r.seconds, 1),
                    "requests": len(r.samples),
                    "statuses": dict(Counter(str(s.status) for s in r.samples)),
                    "cpu_seconds": r.cpu_seconds,
                    "rss_mib": r.rss_mib,
                }
                for r in results
            ]
        },
    )


def _fast_loop() -> None:
    """uvloop for the load generator when it is installed (uvicorn's extra brings it)."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--think", type=float, default=THINK_SECONDS, help="mean pause (s)")
    args = parser.parse_args()
    _fast_loop()
    results = bench(args.clients, args.seconds, args.runs, args.think)
    report(results, args.clients, args.seconds, args.think)


if __name__ == "__main__":
    main()
