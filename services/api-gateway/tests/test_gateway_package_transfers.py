"""Package pushes and content downloads through the gateway's lean upstream client
(`upstream/streaming.py`): bytes, validators and ranges pass through unchanged, and the
failure paths keep their guarantees (413 with and without Content-Length, a client that
goes away mid-push or mid-download, an upstream that is silent or down).

A real package-feed with a 1 MiB upload limit under uvicorn, and the gateway under uvicorn
in front of it; the disconnect-on-download case uses a small stand-in upstream that
streams forever, so that the test can see the gateway let go of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import uuid
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route as StarletteRoute

from cephalo_feed.app import create_app as create_feed_app
from cephalo_feed.settings import FeedSettings
from cephalo_gateway.app import create_app
from cephalo_gateway.domain.routing import Route, Upstream, is_package_transfer, resolve_route
from cephalo_gateway.settings import GatewaySettings

MIB = 1024 * 1024
TIMEOUT = 60.0
"""Generous: the machines these run on are shared, and a push fsyncs."""
STEP_SECONDS = 10.0


def package(size: int) -> bytes:
    """A stored zip a little over `size` bytes of random content."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("payload.bin", os.urandom(size))
    return buffer.getvalue()


@pytest.fixture
async def small_feed(
    serve: Any, feed_settings: FeedSettings, tmp_path: Path
) -> AsyncIterator[tuple[str, FeedSettings]]:
    limits = feed_settings.limits.model_copy(
        update={"max_upload_bytes": 2 * MIB, "idle_timeout_seconds": 2.0}
    )
    settings = feed_settings.model_copy(
        update={"storage_dir": tmp_path / "packages", "limits": limits}
    )
    async with serve(create_feed_app(settings)) as url:
        yield url, settings


@pytest.fixture
async def gateway_url(
    serve: Any, gateway_settings: GatewaySettings, small_feed: tuple[str, FeedSettings]
) -> AsyncIterator[str]:
    settings = gateway_settings.model_copy(update={"package_feed_url": small_feed[0]})
    async with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
async def admin(gateway_url: str, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=gateway_url,
        headers={"X-Cephalo-Api-Key": admin_key},
        trust_env=False,
        timeout=TIMEOUT,
    ) as client:
        yield client


def leftovers(settings: FeedSettings) -> list[Path]:
    return list(settings.upload_dir.glob("*")) if settings.upload_dir.exists() else []


async def no_leftovers(settings: FeedSettings) -> list[Path]:
    """The feed notices a broken upload a moment after the gateway lets go of it."""
    for _ in range(100):
        if not leftovers(settings):
            break
        await asyncio.sleep(0.1)
    return leftovers(settings)


async def test_a_push_and_its_download_round_trip_with_ranges_and_validators(
    admin: httpx.AsyncClient,
) -> None:
    space = uuid.uuid4()
    body = package(MIB + 12345)
    pushed = await admin.post(
        f"/api/v1/spaces/{space}/packages", params={"filename": "Lean.Web.1.0.0.zip"}, content=body
    )
    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["sha256"] == hashlib.sha256(body).hexdigest()
    content = f"/api/v1/spaces/{space}/packages/Lean.Web/versions/1.0.0/content"

    whole = await admin.get(content)
    assert whole.status_code == 200
    assert whole.content == body
    assert whole.headers["content-length"] == str(len(body))
    etag = whole.headers["etag"]

    part = await admin.get(content, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206
    assert part.content == body[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(body)}"

    unchanged = await admin.get(content, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""

    head = await admin.head(content)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(body))

    beyond = await admin.get(content, headers={"Range": f"bytes={len(body)}-"})
    assert beyond.status_code == 416


async def test_a_chunked_push_without_content_length_is_stored(admin: httpx.AsyncClient) -> None:
    body = package(300_000)

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(body), 65_536):
            yield body[start : start + 65_536]

    pushed = await admin.post(
        f"/api/v1/spaces/{uuid.uuid4()}/packages",
        params={"filename": "Lean.Chunked.1.0.0.zip"},
        content=pieces(),
    )
    assert pushed.status_code == 201, pushed.text
    assert pushed.json()["size_bytes"] == len(body)


async def test_an_oversize_push_with_content_length_is_413_and_leaves_nothing(
    admin: httpx.AsyncClient, small_feed: tuple[str, FeedSettings]
) -> None:
    refused = await admin.post(
        f"/api/v1/spaces/{uuid.uuid4()}/packages",
        params={"filename": "Lean.Big.1.0.0.zip"},
        content=os.urandom(3 * MIB),
    )
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    assert await no_leftovers(small_feed[1]) == []


async def test_an_oversize_push_without_content_length_is_413_and_leaves_nothing(
    admin: httpx.AsyncClient, small_feed: tuple[str, FeedSettings]
) -> None:
    async def endless() -> AsyncIterator[bytes]:
        for _ in range(64):
            yield os.urandom(128 * 1024)

    refused = await admin.post(
        f"/api/v1/spaces/{uuid.uuid4()}/packages",
        params={"filename": "Lean.Big.1.0.0.zip"},
        content=endless(),
    )
    assert refused.status_code == 413
    assert await no_leftovers(small_feed[1]) == []


async def test_a_client_gone_mid_push_leaves_nothing_in_the_feed(
    gateway_url: str, admin_key: str, small_feed: tuple[str, FeedSettings]
) -> None:
    space = uuid.uuid4()
    host, port = gateway_url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST /api/v1/spaces/{space}/packages?filename=Lean.Gone.1.0.0.zip HTTP/1.1\r\n"
        f"Host: gateway\r\nX-Cephalo-Api-Key: {admin_key}\r\nContent-Length: {MIB}\r\n\r\n"
    )
    writer.write(head.encode() + os.urandom(300_000))
    await writer.drain()
    settings = small_feed[1]
    for _ in range(100):
        if leftovers(settings):
            break
        await asyncio.sleep(0.05)
    assert leftovers(settings), "the push should have reached the feed's temporary file"
    writer.close()
    assert await no_leftovers(settings) == []
    async with httpx.AsyncClient(
        base_url=gateway_url, headers={"X-Cephalo-Api-Key": admin_key}, trust_env=False
    ) as client:
        listed = await client.get(f"/api/v1/spaces/{space}/packages/Lean.Gone/versions")
    assert listed.status_code == 404 or listed.json() == []


@pytest.fixture
async def endless_feed(serve: Any) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """Streams a download forever; the event is set once the gateway has let go of it."""
    released = asyncio.Event()

    async def content(_: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            try:
                for _ in range(100_000):
                    yield b"z" * 65_536
                    await asyncio.sleep(0)
            finally:
                released.set()

        return StreamingResponse(body(), media_type="application/zip")

    app = Starlette(
        routes=[
            StarletteRoute(
                "/api/v1/spaces/{space}/packages/{id}/versions/{version}/content", content
            )
        ]
    )
    async with serve(app) as url:
        yield url, released


async def test_a_client_gone_mid_download_releases_the_upstream(
    serve: Any,
    gateway_settings: GatewaySettings,
    admin_key: str,
    endless_feed: tuple[str, asyncio.Event],
) -> None:
    feed_url, released = endless_feed
    settings = gateway_settings.model_copy(update={"package_feed_url": feed_url})
    async with (
        serve(create_app(settings)) as url,
        httpx.AsyncClient(trust_env=False, headers={"X-Cephalo-Api-Key": admin_key}) as client,
    ):
        path = f"{url}/api/v1/spaces/{uuid.uuid4()}/packages/Lean.Web/versions/1.0.0/content"
        async with client.stream("GET", path) as response:
            assert response.status_code == 200
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received > 2 * MIB:
                    break
        async with asyncio.timeout(STEP_SECONDS):
            await released.wait()


@pytest.mark.parametrize("upstream", ["silent", "down"])
async def test_a_silent_upstream_is_a_504_and_a_missing_one_a_503(
    serve: Any,
    gateway_settings: GatewaySettings,
    admin_key: str,
    silent_upstream: str,
    nothing_listening: str,
    upstream: str,
) -> None:
    feed_url = silent_upstream if upstream == "silent" else nothing_listening
    settings = gateway_settings.model_copy(
        update={"package_feed_url": feed_url, "upstream_timeout_seconds": 0.5}
    )
    async with (
        serve(create_app(settings)) as url,
        httpx.AsyncClient(trust_env=False, headers={"X-Cephalo-Api-Key": admin_key}) as client,
    ):
        space = uuid.uuid4()
        download = await client.get(
            f"{url}/api/v1/spaces/{space}/packages/Lean.Web/versions/1.0.0/content"
        )
        push = await client.post(
            f"{url}/api/v1/spaces/{space}/packages?filename=Lean.Web.1.0.0.zip", content=b"PK"
        )
    expected = 504 if upstream == "silent" else 503
    assert (download.status_code, push.status_code) == (expected, expected)
    assert "package-feed" in download.json()["detail"]


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("POST", "/api/v1/spaces/default/packages", True),
        ("POST", "/api/v1/spaces/default/packages/raw", True),
        ("GET", "/api/v1/spaces/default/packages/Acme/versions/1.0.0/content", True),
        ("HEAD", "/api/v1/spaces/default/packages/Acme/versions/1.0.0/content", True),
        ("GET", "/api/v1/spaces/default/packages", False),
        ("GET", "/api/v1/spaces/default/packages/Acme/versions", False),
        ("DELETE", "/api/v1/spaces/default/packages/Acme/versions/1.0.0", False),
        ("POST", "/api/v1/spaces/default/packages/Acme/versions/1.0.0/download-url", False),
        ("POST", "/api/v1/spaces/default/releases", False),
    ],
)
def test_only_pushes_and_content_downloads_take_the_lean_path(
    method: str, path: str, expected: bool
) -> None:
    assert is_package_transfer(resolve_route(path), method) is expected


def test_another_upstream_never_takes_the_lean_path() -> None:
    route = Route(Upstream.RELEASE_SERVICE, "/api/v1/spaces/x/packages", "x", "/packages")
    assert is_package_transfer(route, "POST") is False
