"""package-feed benchmark: push, list, resolve and download against real servers.

Starts its own PostgreSQL and NATS (from their wheels), optionally SeaweedFS for S3, and
package-feed as a real uvicorn process, then measures:

- small pushes (many concurrent clients): pushes/s and latency percentiles;
- one large push and its download: MB/s, and the server's peak RSS above its baseline;
- ranged downloads: requests/s;
- version resolution (`/latest` with a NuGet range over many versions): latency.

Run: `.venv/bin/python services/package-feed/bench/bench_feed.py [--backend s3] [--json out.json]`
(`make bench-feed`). Everything it starts is stopped and its temp dir deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx

from cephalo_common.db.migrations import upgrade
from cephalo_common.embedded import EmbeddedNats, EmbeddedPostgres, die_with_parent, free_port

MIB = 1024 * 1024


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def small_zip(seed: int, size: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("payload.bin", os.urandom(size) + seed.to_bytes(8, "big"))
    return buffer.getvalue()


def big_zip(path: Path, size: int) -> None:
    block = os.urandom(MIB)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive,
        archive.open("payload.bin", "w", force_zip64=True) as entry,
    ):
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


@contextlib.contextmanager
def seaweedfs(directory: Path) -> Iterator[str]:
    directory.mkdir(parents=True)
    s3 = free_port()
    names = ["master", "volume", "filer", "admin"]
    args = [
        str(Path(sys.executable).parent / "weed"),
        "mini",
        f"-dir={directory}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3}",
        f"-s3.port.grpc={free_port()}",
        *(f"-{name}.port={free_port()}" for name in names),
        *(f"-{name}.port.grpc={free_port()}" for name in names),
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-filer.localSocket={directory / 'filer.sock'}",
        f"-s3.localSocket={directory / 's3.sock'}",
        "-bucket=bench",
    ]
    with (directory / "weed.log").open("ab") as log:
        process = subprocess.Popen(
            args, cwd=directory, stdout=log, stderr=subprocess.STDOUT, preexec_fn=die_with_parent
        )
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{endpoint}/bench", timeout=1).status_code == 200:
                    break
            time.sleep(0.1)
        yield endpoint
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def feed_process(env: dict[str, str], log_path: Path, port: int) -> Iterator[tuple[str, int]]:
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cephalo_feed", "api"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"package-feed did not start; see {log_path}")
            time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


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


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await asyncio.to_thread(handle.read, MIB):
            yield chunk


async def bench_large(
    client: httpx.AsyncClient, space: uuid.UUID, pid: int, path: Path
) -> dict[str, Any]:
    size = path.stat().st_size
    baseline = rss(pid)
    with PeakRss(pid) as upload_peak:
        started = time.perf_counter()
        response = await client.post(
            f"/api/v1/spaces/{space}/packages",
            params={"filename": path.name},
            content=file_chunks(path),
            headers={"Content-Length": str(size)},
        )
        push_seconds = time.perf_counter() - started
    response.raise_for_status()
    digest = hashlib.sha256()
    with PeakRss(pid) as download_peak:
        started = time.perf_counter()
        async with client.stream("GET", response.json()["content_path"]) as download:
            async for chunk in download.aiter_raw():
                digest.update(chunk)
        download_seconds = time.perf_counter() - started
    if digest.hexdigest() != response.json()["sha256"]:
        raise RuntimeError("the download does not match the upload")
    return {
        "size_mib": size // MIB,
        "push_mb_per_s": round(size / push_seconds / 1e6, 1),
        "download_mb_per_s": round(size / download_seconds / 1e6, 1),
        "server_rss_baseline_mib": baseline // MIB,
        "server_rss_growth_push_mib": max(0, upload_peak.peak - baseline) // MIB,
        "server_rss_growth_download_mib": max(0, download_peak.peak - baseline) // MIB,
        "content_path": response.json()["content_path"],
    }


async def bench_ranges(client: httpx.AsyncClient, path: str, requests: int) -> dict[str, Any]:
    latencies = []
    started = time.perf_counter()
    for index in range(requests):
        begin = time.perf_counter()
        offset = (index * 65_536) % (100 * MIB)
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


async def run(options: argparse.Namespace, url: str, pid: int, workdir: Path) -> dict[str, Any]:
    space = uuid.uuid4()
    big = workdir / "Bench.Large.1.0.0.zip"
    big_zip(big, options.large_mib * MIB)
    async with httpx.AsyncClient(base_url=url, timeout=600, trust_env=False) as client:
        small = await bench_small_pushes(
            client, space, options.small_count, options.small_kib * 1024, options.concurrency
        )
        large = await bench_large(client, space, pid, big)
        ranges = await bench_ranges(client, large.pop("content_path"), options.range_requests)
        latest = await bench_latest(client, space, options.versions, options.latest_queries)
    return {
        "backend": options.backend,
        "small_pushes": small,
        "large_package": large,
        "ranged_downloads": ranges,
        "latest_in_range": latest,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["filesystem", "s3"], default="filesystem")
    parser.add_argument("--small-count", type=int, default=300)
    parser.add_argument("--small-kib", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--large-mib", type=int, default=512)
    parser.add_argument("--range-requests", type=int, default=300)
    parser.add_argument("--versions", type=int, default=400)
    parser.add_argument("--latest-queries", type=int, default=200)
    parser.add_argument("--json", type=Path, help="Also write the results to this file.")
    options = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="cephalo-bench-feed-"))
    workdir.chmod(0o755)
    postgres = EmbeddedPostgres(workdir / "postgres", free_port(), durable=False)
    nats = EmbeddedNats(workdir / "nats", free_port())
    try:
        database_url = postgres.start()
        nats.start()
        upgrade("cephalo_feed", database_url)
        port = free_port()
        env = {key: value for key, value in os.environ.items() if not key.startswith("CEPHALO_")}
        env.update(
            {
                "CEPHALO_FEED_PORT": str(port),
                "CEPHALO_FEED_DATABASE__URL": database_url,
                "CEPHALO_FEED_NATS__URL": nats.url,
                "CEPHALO_FEED_STORAGE_DIR": str(workdir / "packages"),
                "CEPHALO_FEED_LIMITS__MAX_UPLOAD_BYTES": str(8 * 1024 * MIB),
                "CEPHALO_FEED_LOG_LEVEL": "WARNING",
            }
        )
        with contextlib.ExitStack() as stack:
            if options.backend == "s3":
                endpoint = stack.enter_context(seaweedfs(workdir / "seaweedfs"))
                env.update(
                    {
                        "CEPHALO_FEED_STORAGE_BACKEND": "s3",
                        "CEPHALO_FEED_S3__BUCKET": "bench",
                        "CEPHALO_FEED_S3__ENDPOINT_URL": endpoint,
                        "CEPHALO_FEED_S3__ACCESS_KEY_ID": "bench",
                        "CEPHALO_FEED_S3__SECRET_ACCESS_KEY": "bench",
                    }
                )
            url, pid = stack.enter_context(feed_process(env, workdir / "feed.log", port))
            results = asyncio.run(run(options, url, pid, workdir))
    finally:
        nats.stop()
        postgres.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if options.json:
        options.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
