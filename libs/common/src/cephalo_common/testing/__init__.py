"""Test support: real Postgres and NATS on free loopback ports, run-the-lifespan helpers."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any, Literal

import httpx
import uvicorn
from fastapi import FastAPI


async def wait_until_ready(client: httpx.AsyncClient, timeout: float = 60.0) -> None:
    """Poll `/readyz` until 200: NATS connects in the background after start."""
    async with asyncio.timeout(timeout):
        while (await client.get("/readyz")).status_code != 200:
            await asyncio.sleep(0.05)


@asynccontextmanager
async def running(app: FastAPI, *, ready: bool = True) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan (engine, broker, relay, consumers) and give an in-process client.

    With `ready` (the default) it waits until the service reports ready.
    """
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            if ready:
                await wait_until_ready(client)
            yield client


STARTUP_SECONDS = 90
"""A ceiling, not a wait: two xdist workers on a loaded 2-core machine start slowly."""


class _TestServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The test runner owns the process's signals."""
        yield


@asynccontextmanager
async def serving(
    app: Any, *, port: int | None = None, lifespan: Literal["auto", "on", "off"] = "auto"
) -> AsyncIterator[str]:
    """Serve an ASGI app over real HTTP on 127.0.0.1 (a free port unless given); yield its URL.

    For tests whose client is another process or needs a real socket (streaming, agents).
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port or 0))
    bound = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        ws="none",
        lifespan=lifespan,
        timeout_graceful_shutdown=2,
    )
    server = _TestServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(STARTUP_SECONDS):
            while not server.started:
                if task.done():
                    task.result()
                    raise RuntimeError("uvicorn stopped before it started")
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{bound}"
    finally:
        server.should_exit = True
        await task
        sock.close()
