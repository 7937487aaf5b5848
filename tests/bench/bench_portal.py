"""`make bench-portal`: how long the portal's pages take with 100 projects x 5 environments.

    .venv/bin/python tests/bench/bench_portal.py [--projects 100] [--environments 5]

Starts its own PostgreSQL and NATS (the embedded wheels) and the whole stack as processes,
seeds N projects and M environments through the public API (one lifecycle phase holding
every environment, so any release may go anywhere; each project allows deployments to no
targets, so every deployment finishes without agents), deploys one release of each project
to every environment so the dashboard has N x M cells, then signs in to the portal and
times each page: the wall time of a GET over loopback from request to last byte (the
portal's own work plus its calls to the gateway's API and the upstream services), and the
CPU time the five service processes spent per page (from /proc, their idle background
work subtracted), which a shared machine's load does not inflate the way it does wall time.
Writes the "Portal" section of `docs/benchmarks.md` and `docs/benchmarks/portal.json`.

A benchmark, not a test: nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import re
import statistics
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx

from cephalo_dev.benchreport import Comparison, write_report
from cephalo_dev.benchstack import bench_stack, cpu_seconds
from cephalo_dev.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
SECTION_START = "<!-- bench-portal:start -->"
SECTION_END = "<!-- bench-portal:end -->"
SPACE = "/api/v1/spaces/default"
PASSWORD = "portal benchmark password"
REPEATS = 20
TERMINAL = {"Success", "Failed", "Canceled", "TimedOut"}
TARGET_MS = 300
Row = tuple[str, list[float], float]
"""A page: its name, the wall time of each fetch (ms), the services' CPU per fetch (ms)."""


async def ok(response: Awaitable[httpx.Response]) -> Any:
    answered = await response
    if answered.status_code >= 400:
        raise RuntimeError(f"{answered.request.url}: {answered.status_code} {answered.text}")
    return answered.json() if answered.content else None


async def seed(api: httpx.AsyncClient, projects: int, environments: int) -> dict[str, str]:
    """Environments, a lifecycle, projects with a release each, deployed everywhere."""
    envs = [
        await ok(api.post(f"{SPACE}/environments", json={"name": f"Bench Env {n}"}))
        for n in range(1, environments + 1)
    ]
    ids = [e["id"] for e in envs]
    await ok(
        api.post(
            f"{SPACE}/lifecycles",
            json={"name": "Bench", "phases": [{"name": "All", "optional_environment_ids": ids}]},
        )
    )
    step = {"name": "Nothing to do", "target_roles": ["nowhere"], "script_body": "true"}
    releases = []
    for n in range(1, projects + 1):
        project = await ok(
            api.post(
                f"{SPACE}/projects",
                json={
                    "name": f"Bench Project {n:03d}",
                    "lifecycle": "Bench",
                    "connectivity_policy": {"allow_deployments_to_no_targets": True},
                },
            )
        )
        await ok(
            api.put(f"{SPACE}/projects/{project['id']}/deployment-process", json={"steps": [step]})
        )
        releases.append(
            await ok(
                api.post(f"{SPACE}/projects/{project['id']}/releases", json={"version": "1.0.0"})
            )
        )
    for environment in envs:
        for release in releases:
            await ok(
                api.post(
                    f"{SPACE}/deployments",
                    json={"release_id": release["id"], "environment_id": environment["id"]},
                )
            )
    await settle(api, projects * environments)
    tasks = await ok(api.get(f"{SPACE}/tasks", params={"limit": 1}))
    return {
        "project": releases[0]["project_id"],
        "release": releases[0]["id"],
        "environment": ids[0],
        "task": tasks[0]["id"] if tasks else "",
    }


async def settle(api: httpx.AsyncClient, cells: int, limit: float = 900) -> None:
    async with asyncio.timeout(limit):
        while True:
            board = await ok(api.get(f"{SPACE}/dashboard"))
            done = [i for i in board["items"] if i["state"] in TERMINAL]
            print(f"dashboard: {len(done)}/{cells} cells finished", flush=True)
            if len(done) >= cells:
                return
            await asyncio.sleep(5)


async def sign_in(stack: Stack, api: httpx.AsyncClient) -> httpx.AsyncClient:
    user = await ok(api.post("/api/v1/users", json={"username": "bench", "password": PASSWORD}))
    team = await ok(
        api.post("/api/v1/teams", json={"name": "Bench", "member_user_ids": [user["id"]]})
    )
    await ok(
        api.post(f"/api/v1/teams/{team['id']}/role-assignments", json={"role": "administrator"})
    )
    browser = httpx.AsyncClient(base_url=stack.gateway_url, timeout=60)
    answer = await browser.post("/app/sign-in", data={"username": "bench", "password": PASSWORD})
    cookie = re.search(r"cephalo_portal=([^;]+)", answer.headers.get("set-cookie", ""))
    if answer.status_code != 303 or cookie is None:
        raise RuntimeError(f"sign-in failed: {answer.status_code} {answer.text}")
    browser.headers["cookie"] = f"cephalo_portal={cookie.group(1)}"
    return browser


IDLE_SECONDS = 5.0


async def idle_rate(pids: list[int]) -> float:
    """CPU seconds per second the services spend with no request (relays, schedulers)."""
    before, started_at = cpu_seconds(pids), time.perf_counter()
    await asyncio.sleep(IDLE_SECONDS)
    return (cpu_seconds(pids) - before) / (time.perf_counter() - started_at)


async def timed(
    browser: httpx.AsyncClient, path: str, pids: list[int], idle: float
) -> tuple[list[float], float]:
    """Wall times (ms) of each GET and the services' CPU ms per GET, idle work subtracted."""
    times = []
    cpu_before, began = cpu_seconds(pids), time.perf_counter()
    for _ in range(REPEATS):
        started_at = time.perf_counter()
        response = await browser.get(path)
        elapsed = (time.perf_counter() - started_at) * 1000
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code}")
        times.append(elapsed)
    busy = cpu_seconds(pids) - cpu_before - idle * (time.perf_counter() - began)
    return times, max(busy, 0.0) * 1000 / REPEATS


def machine() -> list[str]:
    """What ran it, with the load average at the end (other work shares the cores)."""
    return [
        f"{os.cpu_count()} CPUs",
        platform.processor() or platform.machine(),
        platform.python_version(),
        f"load average {os.getloadavg()[1]:.1f}"
        + (" (under load: other work shared the cores)" if os.getloadavg()[1] > 3 else ""),
    ]


def bench(projects: int, environments: int) -> list[Row]:
    with bench_stack("bench-portal-") as stack:
        return asyncio.run(measure(stack, projects, environments))


async def measure(stack: Stack, projects: int, environments: int) -> list[Row]:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers=stack.auth_headers, timeout=60
    ) as api:
        ids = await seed(api, projects, environments)
        browser = await sign_in(stack, api)
        pages = {
            f"dashboard ({projects} x {environments} cells)": (browser, "/app/dashboard"),
            "for comparison: the API's dashboard (JSON, API key)": (api, f"{SPACE}/dashboard"),
            "projects": (browser, "/app/projects"),
            "environments": (browser, "/app/environments"),
            "deployment targets": (browser, "/app/machines"),
            "a project (process and releases)": (browser, f"/app/projects/{ids['project']}"),
            "a release with its plan": (
                browser,
                f"/app/releases/{ids['release']}?environment={ids['environment']}",
            ),
            "a task with its log": (browser, f"/app/tasks/{ids['task']}"),
        }
        pids = [process.pid for process in stack.processes.values()]
        idle = await idle_rate(pids)
        rows: list[Row] = []
        try:
            for name, (client, path) in pages.items():
                times, cpu_ms = await timed(client, path, pids, idle)
                rows.append((name, times, cpu_ms))
                print(f"{name}: {summary(times)}, {cpu_ms:.0f} ms server CPU", flush=True)
        finally:
            await browser.aclose()
    return rows


def summary(times: list[float]) -> str:
    p95 = sorted(times)[int(len(times) * 0.95) - 1]
    return f"{statistics.median(times):.0f} ms median, {p95:.0f} ms p95, {max(times):.0f} ms max"


METHOD = """Each page is fetched {repeats} times in a row by one signed-in client (no browser:
rendering time in Chromium is not counted); the time is from sending the request to the last
byte over loopback. A page costs one session look-up plus the API calls it shows, all made
in process through the gateway's own ASGI app (authentication, authorization, audit), and the
upstream services' own work. The target is under 300 ms per page. The CPU column is the
user + system time of all five service processes per page, read from /proc before and after
the {repeats} fetches, minus what they spent in the same time when idle (measured for
{idle:.0f} s first): under load, wall time is mostly waiting for a core, CPU time is not."""


def write_section(output: Path, projects: int, environments: int, rows: list[Row]) -> None:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = "\n".join(
        f"| {what} | {summary(times)} | {cpu_ms:.0f} ms |" for what, times, cpu_ms in rows
    )
    section = (
        f"{SECTION_START}\n## Portal: page times with {projects} projects x {environments} "
        f"environments\n\nRun {stamp}. Machine: "
        + "; ".join(machine())
        + ".\n\n"
        + METHOD.format(repeats=REPEATS, idle=IDLE_SECONDS)
        + "\n\n| page | wall time | server CPU per page |\n|---|---|---|\n"
        + f"{table}\n{SECTION_END}\n"
    )
    text = output.read_text() if output.exists() else "# Benchmarks\n\n"
    if SECTION_START in text and SECTION_END in text:
        head, rest = text.split(SECTION_START, 1)
        tail = rest.split(SECTION_END, 1)[1].lstrip("\n")
        text = head + section + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    output.write_text(text)
    print(f"wrote {output}")


def write_json(output: Path, projects: int, environments: int, rows: list[Row]) -> None:
    """`docs/benchmarks/portal.json` in the shared format (`make bench`'s summary reads it)."""
    comparisons = [
        Comparison(measure, value, "ms", target=f"< {TARGET_MS} ms", met=value < TARGET_MS)
        for what, times, cpu_ms in rows
        for measure, value in (
            (f"{what}: median wall time", round(statistics.median(times), 1)),
            (f"{what}: server CPU per page", round(cpu_ms, 1)),
        )
    ]
    title = f"Portal page times, {projects} projects x {environments} environments"
    write_report("portal", title, comparisons, output.parent)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--projects", type=int, default=100)
    parser.add_argument("--environments", type=int, default=5)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    rows = bench(args.projects, args.environments)
    write_section(args.output, args.projects, args.environments, rows)
    write_json(
        args.output.parent / "benchmarks" / "portal.json", args.projects, args.environments, rows
    )


if __name__ == "__main__":
    main()
