"""What the gateway's paged list is compared with: one FastAPI process doing one asyncpg
SELECT of the same page of projects (no authentication, audit, proxy hop or ORM).

Served by bench_api.py as `uvicorn bare_api_app:app`, once with `--loop asyncio --http h11`
and once with `--loop uvloop --http httptools`; `BENCH_DATABASE_URL` is a libpq URL of the
database release-service uses.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import FastAPI

PAGE = "SELECT * FROM release.projects ORDER BY name_key, id OFFSET $1 LIMIT $2"


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    app.state.pool = await asyncpg.create_pool(os.environ["BENCH_DATABASE_URL"], max_size=10)
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/projects")
async def projects(skip: int = 0, take: int = 30) -> dict[str, Any]:
    rows = await app.state.pool.fetch(PAGE, skip, take)
    return {"items": [dict(row) for row in rows], "skip": skip, "take": take}
