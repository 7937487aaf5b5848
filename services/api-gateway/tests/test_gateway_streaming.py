"""Bodies stream through the gateway in both directions, and a silent upstream is a 504.

The gateway runs under uvicorn here (an in-process ASGI client buffers whole responses).
The upstream is a small ASGI app standing in for package-feed's upload and download
endpoints, which arrive later: each side waits for the other's first chunk, so a gateway
that buffered a whole body would deadlock and the test would time out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from cephalo_common.testing import running
from cephalo_gateway.app import create_app
from cephalo_gateway.settings import GatewaySettings

CHUNK = b"x" * 64 * 1024
STEP_TIMEOUT = 5.0


class Rendezvous:
    def __init__(self) -> None:
        self.upstream_got_first_chunk = asyncio.Event()
        self.client_got_first_chunk = asyncio.Event()
        self.received_headers: dict[str, str] = {}


def stand_in_feed(rendezvous: Rendezvous) -> Starlette:
    async def upload(request: Request) -> JSONResponse:
        rendezvous.received_headers = dict(request.headers)
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received:
                rendezvous.upstream_got_first_chunk.set()
        return JSONResponse({"received": received}, status_code=201)

    async def download(_: Request) -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield CHUNK
            await asyncio.wait_for(rendezvous.client_got_first_chunk.wait(), STEP_TIMEOUT)
            yield CHUNK

        return StreamingResponse(body(), media_type="application/zip")

    return Starlette(
        routes=[
            Route("/api/v1/spaces/{space}/packages/raw", upload, methods=["POST"]),
            Route("/api/v1/spaces/{space}/packages/raw", download, methods=["GET"]),
        ]
    )


@pytest.fixture
async def rendezvous() -> Rendezvous:
    return Rendezvous()


@pytest.fixture
async def gateway_url(
    serve: Any, gateway_settings: GatewaySettings, rendezvous: Rendezvous
) -> AsyncIterator[str]:
    async with serve(stand_in_feed(rendezvous)) as feed_url:
        settings = gateway_settings.model_copy(update={"package_feed_url": feed_url})
        async with serve(create_app(settings)) as url:
            yield url


def packages_url(gateway_url: str) -> str:
    return f"{gateway_url}/api/v1/spaces/{uuid.uuid4()}/packages/raw"


async def test_an_upload_reaches_the_upstream_before_the_client_has_sent_it_all(
    gateway_url: str, rendezvous: Rendezvous, admin_key: str
) -> None:
    async def body() -> AsyncIterator[bytes]:
        yield CHUNK
        await asyncio.wait_for(rendezvous.upstream_got_first_chunk.wait(), STEP_TIMEOUT)
        for _ in range(15):
            yield CHUNK

    async with httpx.AsyncClient(trust_env=False) as client:
        response = await client.post(
            packages_url(gateway_url),
            content=body(),
            headers={
                "content-type": "application/zip",
                "x-request-id": "upload-1",
                "x-cephalo-api-key": admin_key,
            },
        )
    assert response.status_code == 201, response.text
    assert response.json() == {"received": 16 * len(CHUNK)}
    assert rendezvous.received_headers["x-request-id"] == "upload-1"
    assert rendezvous.received_headers["content-type"] == "application/zip"
    assert "x-cephalo-api-key" not in rendezvous.received_headers
    assert rendezvous.received_headers["x-cephalo-identity"].count(".") == 1


async def test_a_download_reaches_the_client_before_the_upstream_has_sent_it_all(
    gateway_url: str, rendezvous: Rendezvous, admin_key: str
) -> None:
    async with (
        httpx.AsyncClient(trust_env=False, headers={"x-cephalo-api-key": admin_key}) as client,
        client.stream("GET", packages_url(gateway_url)) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/zip"
        received = 0
        async for chunk in response.aiter_raw():
            received += len(chunk)
            if received >= len(CHUNK):
                rendezvous.client_got_first_chunk.set()
    assert received == 2 * len(CHUNK)


async def test_an_upstream_that_never_answers_is_a_504(
    gateway_settings: GatewaySettings, silent_upstream: str, admin_key: str
) -> None:
    settings = gateway_settings.model_copy(
        update={"orchestrator_url": silent_upstream, "upstream_timeout_seconds": 0.3}
    )
    async with running(create_app(settings)) as client:
        response = await client.get(
            f"/api/v1/spaces/{uuid.uuid4()}/tasks", headers={"x-cephalo-api-key": admin_key}
        )
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "deploy-orchestrator did not answer within 0.3 seconds"


async def test_the_octopus_package_upload_is_forwarded_to_the_raw_endpoint(
    gateway_url: str, rendezvous: Rendezvous, admin_key: str
) -> None:
    space = uuid.uuid4()
    async with httpx.AsyncClient(
        trust_env=False, headers={"X-Octopus-ApiKey": admin_key}
    ) as client:
        response = await client.post(
            f"{gateway_url}/api/{space}/packages/raw",
            content=CHUNK,
            headers={"content-type": "application/octet-stream"},
        )
        refused = await client.post(
            f"{gateway_url}/api/{space}/packages/raw",
            content=b"x",
            headers={"X-Octopus-ApiKey": "API-WRONGWRONGWRONGWRONG"},
        )
    assert response.status_code == 201, response.text
    assert response.json() == {"received": len(CHUNK)}
    assert refused.status_code == 401 and "ErrorMessage" in refused.json()
