"""A request that cannot get a database connection in time is told to come back (503), never
given a 500: the pool being exhausted is overload, seen in the 1,000-client load run."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cephalo_common.http.problems import PROBLEM_CONTENT_TYPE, install_problem_handlers

EXHAUSTED = "QueuePool limit of size 10 overflow 10 reached, connection timed out"


def app_whose_pool_is_exhausted() -> FastAPI:
    """`/things` waits for a connection in its route; every path does in a middleware (as
    the api-gateway's authentication does, outside the routes' exception handlers)."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/things")
    async def things() -> None:
        raise PoolTimeout(EXHAUSTED)

    @app.middleware("http")
    async def authenticate(request: Any, call_next: Any) -> Any:
        if request.url.path == "/guarded":
            raise PoolTimeout(EXHAUSTED)
        return await call_next(request)

    return app


@pytest.mark.parametrize("path", ["/things", "/guarded"])
async def test_an_exhausted_pool_answers_503_with_retry_after(path: str) -> None:
    transport = httpx.ASGITransport(app=app_whose_pool_is_exhausted(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get(path)
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert (body["status"], body["title"]) == (503, "Service busy")
    assert "QueuePool" not in response.text
