"""package-feed benchmark: large transfers through the api-gateway and direct, against
nginx and a bare FastAPI app; then pushes, ranges and version resolution.

Starts its own PostgreSQL and NATS (from their wheels), optionally SeaweedFS for S3, then
package-feed and api-gateway as real processes with their production defaults, the bare
FastAPI app (`bare_app.py`) and nginx (`servers.py`), all on free loopback ports, and
measures (`transfer.py` says how):

- a package of each `--sizes` (default 100 MiB and 1 GiB) pushed and downloaded: MiB/s and
  the peak resident set of the feed and the gateway during each transfer;
- small pushes (many concurrent clients): pushes/s and latency percentiles;
- ranged downloads: requests/s;
- version resolution (`/latest` with a NuGet range over many versions): latency.

Run: `make bench-feed` (installs nginx first when missing and root), or
`.venv/bin/python services/package-feed/bench/bench_feed.py [--backend s3] [--sizes 100,1024]
[--json out.json] [--no-write]`. It rewrites the package-feed section of docs/benchmarks.md.
Everything it starts is stopped and its temp dir deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import io
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
from report import write_section
from servers import bare_app, nginx, seaweedfs, service
from transfer import COMMENT_BYTES, MIB, Servers, TransferBench

from cephalo_common.db.migrations import upgrade
from cephalo_common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cephalo_gateway.domain.credentials import new_api_key

ROOT = Path(__file__).resolve().parents[3]


def small_zip(seed: int, size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("payload.bin", os.urandom(size) + seed.to_bytes(8, "big"))
    return buffer.getvalue()


def big_zip(path: Path, size: int) -> None:
    """A stored zip of random bytes whose archive comment (`COMMENT_BYTES`, the file's
    last bytes) `transfer.make_unique` rewrites before each push."""
    block = os.urandom(MIB)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.comment = b"0" * COMMENT_BYTES
        with archive.open("payload.bin", "w", force_zip64=True) as entry:
            for _ in range(size // MIB):
                entry.write(block)


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {
        "p50_ms": round(pick(0.5), 2),
        "p95_ms": round(pick(0.95), 2),
        "p99_ms": round(pick(0.99), 2),
    }


async def bench_small_pushes(
    client: httpx.AsyncClient, space: uuid.UUID, count: int, size: int, concurrency: int
) -> dict[str, Any]:
    bodies = [small_zip(index, size) for index in range(count)]
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(index: int) -> None:
        async with gate:
            started = time.perf_counter()
            response = await client.post(
                f"/api/v1/spaces/{space}/packages",
                params={"filename": f"Bench.Small.1.{index}.0.zip"},
                content=bodies[index],
            )
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()

    started = time.perf_counter()
    await asyncio.gather(*(one(index) for index in range(count)))
    elapsed = time.perf_counter() - started
    return {
        "pushes": count,
        "package_kib": size // 1024,
        "concurrency": concurrency,
        "pushes_per_s": round(count / elapsed, 1),
        **percentiles(latencies),
    }


async def bench_ranges(
    client: httpx.AsyncClient, path: str, size: int, requests: int
) -> dict[str, Any]:
    latencies = []
    started = time.perf_counter()
    for index in range(requests):
        begin = time.perf_counter()
        offset = (index * 65_536) % (size - 65_536)
        response = await client.get(path, headers={"Range": f"bytes={offset}-{offset + 65_535}"})
        if response.status_code != 206:
            raise RuntimeError(f"range answered {response.status_code}")
        latencies.append(time.perf_counter() - begin)
    return {
        "requests": requests,
        "requests_per_s": round(requests / (time.perf_counter() - started), 1),
        **percentiles(latencies),
    }


async def bench_latest(
    client: httpx.AsyncClient, space: uuid.UUID, versions: int, queries: int
) -> dict[str, Any]:
    body = small_zip(0, 1024)
    gate = asyncio.Semaphore(8)

    async def push(index: int) -> None:
        version = f"2.{index // 50}.{index % 50}" + ("-beta.1" if index % 7 == 0 else "")
        async with gate:
            response = await client.post(
                f"/api/v1/spaces/{space}/packages",
                params={"filename": f"Bench.Resolve.{version}.zip"},
                content=body,
            )
            response.raise_for_status()

    await asyncio.gather(*(push(index) for index in range(versions)))
    latencies = []
    for _ in range(queries):
        started = time.perf_counter()
        response = await client.get(
            f"/api/v1/spaces/{space}/packages/Bench.Resolve/latest",
            params={"version_range": "[2.0,2.5)", "prerelease_tag": "^$"},
        )
        latencies.append(time.perf_counter() - started)
        response.raise_for_status()
    return {"versions": versions, "queries": queries, **percentiles(latencies)}


async def run_api(options: argparse.Namespace, url: str, content: str, size: int) -> dict[str, Any]:
    space = uuid.uuid4()
    async with httpx.AsyncClient(base_url=url, timeout=600, trust_env=False) as client:
        small = await bench_small_pushes(
            client, space, options.small_count, options.small_kib * 1024, options.concurrency
        )
        ranges = await bench_ranges(client, content, size, options.range_requests)
        latest = await bench_latest(client, space, options.versions, options.latest_queries)
    return {"small_pushes": small, "ranged_downloads": ranges, "latest_in_range": latest}


def machine() -> dict[str, str]:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    nginx_version = "not installed"
    with contextlib.suppress(OSError, IndexError):
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        done = subprocess.run([binary, "-v"], capture_output=True, text=True)
        nginx_version = done.stderr.strip().split("/")[-1]
    return {
        "cpus": str(os.cpu_count()),
        "cpu": model,
        "memory": f"{memory:.0f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "nginx": nginx_version,
        "load": ", ".join(f"{value:.1f}" for value in os.getloadavg()),
    }


def start_feed_stack(
    stack: contextlib.ExitStack, options: argparse.Namespace, workdir: Path, files: Path
) -> Servers:
    """PostgreSQL, NATS, (SeaweedFS), package-feed, api-gateway, bare app and nginx."""
    postgres = EmbeddedPostgres(workdir / "postgres", free_port(), durable=False)
    nats = EmbeddedNats(workdir / "nats", free_port())
    database_url = postgres.start()
    stack.callback(postgres.stop)
    nats.start()
    stack.callback(nats.stop)
    upgrade("cephalo_feed", database_url)
    upgrade("cephalo_gateway", database_url)
    base = {key: value for key, value in os.environ.items() if not key.startswith("CEPHALO_")}
    feed_port, gateway_port, api_key = free_port(), free_port(), new_api_key()
    feed_env = {
        **base,
        "CEPHALO_FEED_PORT": str(feed_port),
        "CEPHALO_FEED_DATABASE__URL": database_url,
        "CEPHALO_FEED_NATS__URL": nats.url,
        "CEPHALO_FEED_STORAGE_DIR": str(workdir / "packages"),
        "CEPHALO_FEED_LIMITS__MAX_UPLOAD_BYTES": str(64 * 1024 * MIB),
        "CEPHALO_FEED_LOG_LEVEL": "WARNING",
    }
    if options.backend == "s3":
        endpoint = stack.enter_context(seaweedfs(workdir / "seaweedfs"))
        feed_env |= {
            "CEPHALO_FEED_STORAGE_BACKEND": "s3",
            "CEPHALO_FEED_S3__BUCKET": "bench",
            "CEPHALO_FEED_S3__ENDPOINT_URL": endpoint,
            "CEPHALO_FEED_S3__ACCESS_KEY_ID": "bench",
            "CEPHALO_FEED_S3__SECRET_ACCESS_KEY": "bench",  # pragma: allowlist secret
        }
    nowhere = f"http://127.0.0.1:{free_port()}"
    gateway_env = {
        **base,
        "CEPHALO_GATEWAY_PORT": str(gateway_port),
        "CEPHALO_GATEWAY_DATABASE__URL": database_url,
        "CEPHALO_GATEWAY_NATS__URL": nats.url,
        "CEPHALO_GATEWAY_PACKAGE_FEED_URL": f"http://127.0.0.1:{feed_port}",
        "CEPHALO_GATEWAY_RELEASE_SERVICE_URL": nowhere,
        "CEPHALO_GATEWAY_ORCHESTRATOR_URL": nowhere,
        "CEPHALO_GATEWAY_AGENT_GATEWAY_URL": nowhere,
        "CEPHALO_GATEWAY_BOOTSTRAP_API_KEY": api_key,
        "CEPHALO_GATEWAY_LOG_LEVEL": "WARNING",
    }
    feed = stack.enter_context(service("feed", feed_env, workdir, feed_port))
    gateway = stack.enter_context(service("gateway", gateway_env, workdir, gateway_port))
    bare = stack.enter_context(bare_app(base, workdir, files))
    web = stack.enter_context(nginx(workdir, files))
    return Servers(feed, gateway, bare, web, api_key, str(uuid.uuid4()))


def run(options: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    files = workdir / "files"
    files.mkdir()
    with contextlib.ExitStack() as stack:
        servers = start_feed_stack(stack, options, workdir, files)
        bench = TransferBench(servers, workdir, options.repetitions)
        smallest: tuple[str, int] | None = None
        for size_mib in options.sizes:
            package = files / f"Bench.Large{size_mib}.1.0.0.zip"
            big_zip(package, size_mib * MIB)
            content = bench.run_size(package, size_mib)
            smallest = smallest or (content, package.stat().st_size)
            (files / "uploads" / package.name).unlink(missing_ok=True)
            package.unlink()
        results: dict[str, Any] = {
            "backend": options.backend,
            "repetitions": options.repetitions,
            "run_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "transfers": [row.as_dict() for row in bench.rows],
        }
        if not options.transfers_only and smallest is not None:
            results |= asyncio.run(run_api(options, servers.feed.url, *smallest))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["filesystem", "s3"], default="filesystem")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[100, 1024],
        help="Package sizes in MiB, comma separated.",
    )
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--transfers-only", action="store_true")
    parser.add_argument("--small-count", type=int, default=300)
    parser.add_argument("--small-kib", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--range-requests", type=int, default=300)
    parser.add_argument("--versions", type=int, default=400)
    parser.add_argument("--latest-queries", type=int, default=200)
    parser.add_argument("--json", type=Path, help="Also write the results to this file.")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true", help="Leave docs/benchmarks.md.")
    options = parser.parse_args()
    if options.repetitions < 1 or not options.sizes or min(options.sizes) < 1:
        parser.error("--repetitions and every size must be at least 1")

    workdir = Path(tempfile.mkdtemp(prefix="cephalo-bench-feed-"))
    workdir.chmod(0o755)
    try:
        results = run(options, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if options.json:
        options.json.write_text(text + "\n")
    if not options.no_write:
        write_section(options.output, results)


if __name__ == "__main__":
    main()
