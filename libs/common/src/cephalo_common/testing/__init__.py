"""Test support: real Postgres and NATS on free loopback ports, run-the-lifespan helpers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI


async def wait_until_ready(client: httpx.AsyncClient, timeout: float = 15.0) -> None:
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
