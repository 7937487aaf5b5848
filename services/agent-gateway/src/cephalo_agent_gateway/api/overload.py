"""A database pool with no free connection is an overload, not a fault: 503 + Retry-After.

SQLAlchemy raises `TimeoutError` when no pooled connection frees up within `pool_timeout`;
left to the catch-all it would be a 500 that invites no retry. Nothing was written (the
request never got a connection), so the client may simply try again.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout

from cephalo_common.http.problems import problem
from cephalo_common.logging import get_logger

log = get_logger(__name__)
RETRY_AFTER_SECONDS = 2


def install_overload_handler(app: FastAPI) -> None:
    async def on_pool_timeout(request: Request, error: Exception) -> JSONResponse:
        log.warning("database pool exhausted", path=request.url.path, error=str(error)[:200])
        response = problem(
            503,
            "Service unavailable",
            "agent-gateway is busy (no database connection was free); try again shortly.",
            slug="unavailable",
            request=request,
        )
        response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response

    app.add_exception_handler(PoolTimeout, on_pool_timeout)
