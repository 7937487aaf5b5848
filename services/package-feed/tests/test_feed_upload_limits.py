"""Upload limits over real HTTP: 413 with and without Content-Length, slow clients cut off,
interrupted uploads leave nothing, and a real uvicorn process keeps its memory flat while a
large package streams through it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
import httpx
import pytest

from cephalo_common.embedded import die_with_parent, free_port
from cephalo_common.testing import serving
from cephalo_feed.app import create_app
from cephalo_feed.settings import FeedSettings

MIB = 1024 * 1024


@dataclass
class RawAnswer:
    status: int
    body: bytes


async def raw_request(
    url: str, head: str, body: AsyncIterator[bytes] | None, *, timeout: float = 10.0
) -> RawAnswer:
    """Send a request by hand (so a body can be huge, chunked, slow or cut off) and read the
    answer while the body is still being sent."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(head.replace("\n", "\r\n").encode() + b"\r\n")

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            if body is not None:
                async for chunk in body:
                    writer.write(chunk)
                    await writer.drain()

    sending = asyncio.create_task(send())
    try:
        async with asyncio.timeout(timeout):
            status_line = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            payload = await reader.readexactly(length) if length else b""
    finally:
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await sending
        writer.close()
    return RawAnswer(int(status_line.split()[1]), payload)


def head_for(space: uuid.UUID, headers: dict[str, str], filename: str = "Acme.1.0.0.zip") -> str:
    lines = [f"POST /api/v1/spaces/{space}/packages?filename={filename} HTTP/1.1", "Host: feed"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return "\n".join(lines) + "\n"


async def chunks(
    total: int, size: int = 64 * 1024, *, chunked: bool = False
) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        data = os.urandom(min(size, total - sent))
        sent += len(data)
        yield (f"{len(data):x}\r\n".encode() + data + b"\r\n") if chunked else data
    if chunked:
        yield b"0\r\n\r\n"
    await asyncio.sleep(30)


@pytest.fixture
async def small_feed(
    with_limits: Callable[..., FeedSettings],
) -> AsyncIterator[tuple[str, FeedSettings]]:
    settings = with_limits(max_upload_bytes=MIB, idle_timeout_seconds=0.5, max_upload_seconds=3.0)
    async with serving(create_app(settings), lifespan="on") as url:
        yield url, settings


def leftovers(settings: FeedSettings) -> list[Path]:
    return list(settings.upload_dir.glob("*"))


@pytest.mark.parametrize(
    "content_type", ["application/octet-stream", "multipart/form-data; boundary=xyz"]
)
async def test_a_declared_oversize_upload_is_413_before_its_body_is_read(
    small_feed: tuple[str, FeedSettings], content_type: str
) -> None:
    url, settings = small_feed
    head = head_for(
        uuid.uuid4(), {"Content-Length": str(10 * 1024 * MIB), "Content-Type": content_type}
    )
    answer = await raw_request(url, head, chunks(64 * 1024), timeout=5)
    assert answer.status == 413
    assert b"payload-too-large" in answer.body
    assert leftovers(settings) == []


async def test_an_undeclared_oversize_upload_is_cut_off_with_413(
    small_feed: tuple[str, FeedSettings],
) -> None:
    url, settings = small_feed
    head = head_for(
        uuid.uuid4(),
        {"Transfer-Encoding": "chunked", "Content-Type": "application/octet-stream"},
    )
    answer = await raw_request(url, head, chunks(4 * MIB, chunked=True))
    assert answer.status == 413
    assert leftovers(settings) == []


async def test_an_undeclared_oversize_multipart_upload_is_cut_off_with_413(
    small_feed: tuple[str, FeedSettings],
) -> None:
    url, settings = small_feed

    async def form() -> AsyncIterator[bytes]:
        start = (
            b'--xyz\r\nContent-Disposition: form-data; name="file"; '
            b'filename="Acme.1.0.0.zip"\r\nContent-Type: application/zip\r\n\r\n'
        )
        yield f"{len(start):x}\r\n".encode() + start + b"\r\n"
        async for chunk in chunks(4 * MIB, chunked=True):
            yield chunk

    head = head_for(
        uuid.uuid4(),
        {"Transfer-Encoding": "chunked", "Content-Type": "multipart/form-data; boundary=xyz"},
    )
    answer = await raw_request(url, head, form())
    assert answer.status == 413
    assert leftovers(settings) == []


async def test_a_client_that_stalls_is_cut_off_with_408(
    small_feed: tuple[str, FeedSettings],
) -> None:
    url, settings = small_feed

    async def stall() -> AsyncIterator[bytes]:
        yield b"PK\x03\x04" + bytes(1000)
        await asyncio.sleep(30)

    head = head_for(uuid.uuid4(), {"Content-Length": "100000"})
    started = time.monotonic()
    answer = await raw_request(url, head, stall())
    assert answer.status == 408
    assert time.monotonic() - started < 10
    assert leftovers(settings) == []


async def test_a_client_that_trickles_is_cut_off_at_the_upload_deadline(
    small_feed: tuple[str, FeedSettings],
) -> None:
    url, settings = small_feed

    async def trickle() -> AsyncIterator[bytes]:
        for _ in range(1000):
            yield b"x" * 10
            await asyncio.sleep(0.2)

    answer = await raw_request(url, head_for(uuid.uuid4(), {"Content-Length": "100000"}), trickle())
    assert answer.status == 408
    assert leftovers(settings) == []


async def test_an_interrupted_upload_leaves_nothing_behind(
    small_feed: tuple[str, FeedSettings],
) -> None:
    url, settings = small_feed
    space = uuid.uuid4()
    host, port = url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    writer.write(head_for(space, {"Content-Length": str(MIB // 2)}).replace("\n", "\r\n").encode())
    writer.write(b"\r\n" + os.urandom(200_000))
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.close()
    deadline = time.monotonic() + 5
    while leftovers(settings) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert leftovers(settings) == []
    async with httpx.AsyncClient(base_url=url) as client:
        assert (await client.get(f"/api/v1/spaces/{space}/packages")).json() == []


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class PeakRss:
    """Samples a process's resident memory every 10 ms in a thread."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes(self.pid))
            time.sleep(0.01)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def feed_process(
    feed_settings: FeedSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int, FeedSettings]]:
    """package-feed as its own uvicorn process (`python -m cephalo_feed api`)."""
    tmp_path = tmp_path_factory.mktemp("feed-process")
    port = free_port()
    storage = tmp_path / "storage"
    env = {key: value for key, value in os.environ.items() if not key.startswith("CEPHALO_")}
    env.update(
        {
            "CEPHALO_FEED_PORT": str(port),
            "CEPHALO_FEED_DATABASE__URL": feed_settings.database.url,
            "CEPHALO_FEED_NATS__URL": feed_settings.nats.url,
            "CEPHALO_FEED_STORAGE_DIR": str(storage),
            "CEPHALO_FEED_LIMITS__MAX_UPLOAD_BYTES": str(1024 * MIB),
            "CEPHALO_FEED_RUN_WORKERS": "false",
            "CEPHALO_FEED_RELEASE_SERVICE_URL": feed_settings.release_service_url,
        }
    )
    with (tmp_path / "feed.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cephalo_feed", "api"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "feed.log").read_text()[-2000:])
            time.sleep(0.1)
        yield url, process.pid, FeedSettings(storage_dir=storage)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_big_zip(path: Path, size: int) -> str:
    """A stored (incompressible-ratio) zip of `size` payload bytes; returns its SHA-256."""
    block = os.urandom(MIB)
    with (
        zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive,
        archive.open("payload.bin", "w", force_zip64=True) as entry,
    ):
        for _ in range(size // MIB):
            entry.write(block)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * MIB):
            digest.update(chunk)
    return digest.hexdigest()


async def file_chunks(path: Path) -> AsyncIterator[bytes]:
    with path.open("rb") as handle:
        while chunk := await anyio.to_thread.run_sync(handle.read, MIB):
            yield chunk


async def multipart_chunks(path: Path) -> AsyncIterator[bytes]:
    yield (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="data"; filename="{path.name}"'
        "\r\nContent-Type: application/zip\r\n\r\n"
    ).encode()
    async for chunk in file_chunks(path):
        yield chunk
    yield f"\r\n--{BOUNDARY}--\r\n".encode()


BOUNDARY = "cephalo-memory-test"


@pytest.mark.parametrize("body", ["raw", "multipart"])
async def test_memory_stays_flat_while_a_large_package_streams_through_uvicorn(
    feed_process: tuple[str, int, FeedSettings], tmp_path: Path, archives: type, body: str
) -> None:
    url, pid, settings = feed_process
    size = 256 * MIB
    big = tmp_path / "Big.Package.1.0.0.zip"
    digest = write_big_zip(big, size)
    space = uuid.uuid4()
    if body == "raw":
        content, headers = file_chunks(big), {"Content-Length": str(big.stat().st_size)}
    else:
        content = multipart_chunks(big)
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        warm = await client.post(
            f"/api/v1/spaces/{space}/packages",
            files={"file": ("Warm.Up.1.0.0.zip", archives.zip({"a": b"b"}), "application/zip")},
        )
        assert warm.status_code == 201
        assert (await client.get(warm.json()["content_path"])).status_code == 200
        baseline = rss_bytes(pid)
        with PeakRss(pid) as upload_peak:
            pushed = await client.post(
                f"/api/v1/spaces/{space}/packages",
                params={"filename": big.name},
                content=content,
                headers=headers,
            )
        assert pushed.status_code == 201, pushed.text
        assert pushed.json()["sha256"] == digest
        received = hashlib.sha256()
        with PeakRss(pid) as download_peak:
            async with client.stream("GET", pushed.json()["content_path"]) as download:
                async for chunk in download.aiter_raw():
                    received.update(chunk)
        assert received.hexdigest() == digest
    allowed = 64 * MIB
    assert upload_peak.peak - baseline < allowed, (baseline, upload_peak.peak)
    assert download_peak.peak - baseline < allowed, (baseline, download_peak.peak)
    assert list(settings.upload_dir.glob("*")) == []
