"""Large package transfers: package-feed direct and through the api-gateway, against nginx
(download) and the bare FastAPI app (upload and download), all in one run.

The client is curl (C, so the client's own cost stays small on a shared 2-core machine),
bodies go to /dev/null, and each row is the median of `repetitions` transfers, taken
round-robin (every route once, then again) so that a change in the machine's load hits
every route alike. While a transfer runs, a thread samples the resident set of each server
process every 10 ms (the row keeps the highest sample), and the CPU time each process used
is read from /proc before and after: CPU seconds per GiB barely depend on the load of a
shared machine, where MiB/s do.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from servers import Server

MIB = 1024 * 1024
SAMPLE_SECONDS = 0.01
CURL_TIMEOUT_SECONDS = 600


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
COMMENT_BYTES = 16


def make_unique(package: Path, serial: int) -> None:
    """Give the package new content (its zip comment) so every push stores a new blob:
    package-feed stores identical content once, which would make later pushes skip the
    storage write (a large difference on S3)."""
    with package.open("r+b") as handle:
        handle.seek(-COMMENT_BYTES, os.SEEK_END)
        handle.write(f"{serial:0{COMMENT_BYTES}d}".encode())


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Watch:
    """Peak resident set and CPU time used by each process while the block runs."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = {name: rss(pid) for name, pid in pids.items()}
        self._cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.cpu: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_SECONDS):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss(pid))

    def __enter__(self) -> Watch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.cpu = {
            name: cpu_seconds(pid) - self._cpu_before[name] for name, pid in self.pids.items()
        }


@dataclass
class Servers:
    feed: Server
    gateway: Server
    bare: Server
    nginx: Server | None
    api_key: str
    space: str

    @property
    def pids(self) -> dict[str, int]:
        pids = {"feed": self.feed.pid, "gateway": self.gateway.pid, "bare": self.bare.pid}
        if self.nginx is not None:
            pids["nginx"] = nginx_worker(self.nginx.pid)
        return pids


def nginx_worker(master: int) -> int:
    """The one worker process nginx forks (it serves the requests)."""
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0]) if children else master


SERVED_BY = {
    "bare": ("bare",),
    "nginx": ("nginx",),
    "package-feed": ("feed",),
    "api-gateway": ("gateway", "feed"),
}


@dataclass
class Row:
    size_mib: int
    operation: str
    route: str
    transfer: Callable[[], float]
    seconds: list[float] = field(default_factory=list)
    peak_mib: dict[str, float] = field(default_factory=dict)
    cpu_seconds: dict[str, list[float]] = field(default_factory=dict)

    @property
    def servers(self) -> tuple[str, ...]:
        """The processes this route goes through (others are idle bystanders)."""
        return next(names for prefix, names in SERVED_BY.items() if self.route.startswith(prefix))

    def add(self, seconds: float, watch: Watch) -> None:
        self.seconds.append(seconds)
        for name in self.servers:
            self.peak_mib[name] = max(self.peak_mib.get(name, 0.0), watch.peak[name] / MIB)
            self.cpu_seconds.setdefault(name, []).append(watch.cpu[name])

    def mib_per_s(self, pick: Callable[[Iterable[float]], float] = statistics.median) -> float:
        return self.size_mib / pick(self.seconds)

    def as_dict(self) -> dict[str, Any]:
        per_gib = 1024 / self.size_mib
        return {
            "size_mib": self.size_mib,
            "operation": self.operation,
            "route": self.route,
            "mib_per_s_median": round(self.mib_per_s(), 1),
            "mib_per_s_min": round(self.mib_per_s(max), 1),
            "mib_per_s_max": round(self.mib_per_s(min), 1),
            "peak_rss_mib": {name: round(value, 1) for name, value in self.peak_mib.items()},
            "cpu_seconds_per_gib": {
                name: round(statistics.median(values) * per_gib, 2)
                for name, values in self.cpu_seconds.items()
            },
        }


def curl(*args: str) -> tuple[int, float, int]:
    """(status, seconds, bytes downloaded) of one curl transfer."""
    done = subprocess.run(
        ["curl", "-sS", "--noproxy", "*", "-w", "%{http_code} %{time_total} %{size_download}",
         *args],
        capture_output=True,
        text=True,
        timeout=CURL_TIMEOUT_SECONDS,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"curl failed: {done.stderr.strip()}")
    status, seconds, size = done.stdout.split()[-3:]
    return int(status), float(seconds), int(size)


def upload(url: str, path: Path, headers: dict[str, str], response: Path) -> float:
    extra = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    status, seconds, _ = curl(
        "-X", "POST", "-T", str(path), "-H", "Expect:",
        "-H", "Content-Type: application/octet-stream", *extra, "-o", str(response), url,
    )  # fmt: skip
    if status not in (200, 201):
        raise RuntimeError(f"upload to {url} answered {status}: {response.read_text()[:300]}")
    return seconds


def download(url: str, headers: dict[str, str], size: int) -> float:
    extra = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    status, seconds, received = curl(*extra, "-o", "/dev/null", url)
    if status != 200 or received != size:
        raise RuntimeError(f"download of {url} answered {status} with {received} of {size} bytes")
    return seconds


def sha256_of(url: str, headers: dict[str, str]) -> str:
    digest = hashlib.sha256()
    with httpx.stream("GET", url, headers=headers, timeout=600, trust_env=False) as response:
        response.raise_for_status()
        for chunk in response.iter_raw():
            digest.update(chunk)
    return digest.hexdigest()


class TransferBench:
    def __init__(self, servers: Servers, workdir: Path, repetitions: int) -> None:
        self.servers = servers
        self.workdir = workdir
        self.repetitions = repetitions
        self.rows: list[Row] = []
        self._pushes = 0

    def _measure(self, rows: list[Row]) -> None:
        """Every row `repetitions` times, round-robin."""
        for _ in range(self.repetitions):
            for row in rows:
                with Watch(self.servers.pids) as watch:
                    seconds = row.transfer()
                row.add(seconds, watch)
        for row in rows:
            self.rows.append(row)
            print(f"  {row.size_mib} MiB {row.operation} {row.route}: {row.mib_per_s():.0f} MiB/s")

    def _push_url(self, base: str, size_mib: int, package: Path) -> str:
        self._pushes += 1
        make_unique(package, self._pushes)
        name = f"Bench.Transfer{size_mib}.1.0.{self._pushes}.zip"
        return f"{base}/api/v1/spaces/{self.servers.space}/packages?filename={name}"

    def run_size(self, package: Path, size_mib: int) -> str:
        """Every row for one package size; the stored package's content path."""
        s = self.servers
        key = {"X-Cephalo-Api-Key": s.api_key}
        answer = self.workdir / "answer.json"
        size = package.stat().st_size
        self._measure(
            [
                Row(
                    size_mib,
                    "upload",
                    "bare FastAPI (stream to disk)",
                    lambda: upload(f"{s.bare.url}/upload/{package.name}", package, {}, answer),
                ),
                Row(
                    size_mib,
                    "upload",
                    "package-feed direct",
                    lambda: upload(
                        self._push_url(s.feed.url, size_mib, package), package, {}, answer
                    ),
                ),
                Row(
                    size_mib,
                    "upload",
                    "api-gateway → package-feed",
                    lambda: upload(
                        self._push_url(s.gateway.url, size_mib, package), package, key, answer
                    ),
                ),
            ]
        )
        stored = json.loads(answer.read_text())
        content, sha256 = stored["content_path"], stored["sha256"]
        link = self._signed_link(content, key)
        downloads = [
            Row(
                size_mib,
                "download",
                "bare FastAPI (FileResponse)",
                lambda: download(f"{s.bare.url}/download/{package.name}", {}, size),
            ),
            Row(
                size_mib,
                "download",
                "package-feed direct",
                lambda: download(s.feed.url + content, {}, size),
            ),
            Row(
                size_mib,
                "download",
                "api-gateway → package-feed",
                lambda: download(s.gateway.url + content, key, size),
            ),
            Row(
                size_mib,
                "download",
                "api-gateway → package-feed, signed link, no key",
                lambda: download(s.gateway.url + link, {}, size),
            ),
        ]
        if s.nginx is not None:
            nginx_url = f"{s.nginx.url}/{package.name}"
            downloads.insert(
                0,
                Row(
                    size_mib,
                    "download",
                    "nginx (sendfile)",
                    lambda: download(nginx_url, {}, size),
                ),
            )
        self._measure(downloads)
        if sha256_of(s.gateway.url + link, {}) != sha256:
            raise RuntimeError("the download through the gateway does not match the upload")
        return str(content)

    def _signed_link(self, content: str, key: dict[str, str]) -> str:
        version = content.rsplit("/content", 1)[0]
        answer = httpx.post(
            f"{self.servers.gateway.url}{version}/download-url",
            headers=key,
            json={"ttl_seconds": 3600},
            trust_env=False,
        )
        answer.raise_for_status()
        path: str = answer.json()["path"]
        return path
