"""RFC 9457 problem responses: every error a client sees has `type`, `title`, `status`, `detail`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from cephalo_common.errors import CephaloError
from cephalo_common.ids import uuid7
from cephalo_common.logging import get_logger

PROBLEM_TYPE_BASE = "https://cephalo.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"
BUSY_RETRY_AFTER_SECONDS = 1
log = get_logger(__name__)


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    errors: list[dict[str, Any]] | None = None,
    request: Request | None = None,
    extensions: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if request is not None:
        body["instance"] = request.url.path
    if errors:
        body["errors"] = errors
    body.update(extensions or {})
    return JSONResponse(body, status_code=status, media_type=PROBLEM_CONTENT_TYPE)


def _field_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {
            "field": ".".join(str(part) for part in item.get("loc", ())),
            "message": item.get("msg", ""),
            "code": item.get("type", ""),
        }
        for item in error.errors()
    ]


DATA_EXCEPTION_CLASS = "22"
"""PostgreSQL SQLSTATE class 22, data exception: the client's value (a NUL character, an
integer out of range, an invalid encoding) cannot be stored or compared. Input, not a fault."""


def is_data_exception(error: BaseException) -> bool:
    """Whether `error` (or what it wraps: SQLAlchemy's `orig`, a `__cause__`) is a data
    exception from PostgreSQL."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str) and code.startswith(DATA_EXCEPTION_CLASS):
            return True
        wrapped = getattr(current, "orig", None)
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__
    return False


def _busy(request: Request, error: Exception) -> JSONResponse:
    """Every database connection of this process stayed busy for longer than the pool waits:
    overload, not a fault; the client is told to come back (503, Retry-After)."""
    log.warning("database pool exhausted", path=request.url.path, error=str(error)[:200])
    response = problem(
        503,
        "Service busy",
        "The service is at capacity; retry after the given delay.",
        slug="busy",
        request=request,
    )
    response.headers["Retry-After"] = str(BUSY_RETRY_AFTER_SECONDS)
    return response


def install_problem_handlers(app: FastAPI) -> None:
    """Database errors get their own registration: the catch-all `Exception` handler runs in
    Starlette's outermost middleware, which re-raises after answering (the server then
    drops the connection); a handler for a specific class answers and is done."""

    async def on_cephalo_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, CephaloError)
        return problem(
            error.status_code,
            error.title,
            error.detail,
            slug=error.type_slug,
            errors=error.errors,
            request=request,
        )

    async def on_validation_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return problem(
            422,
            "Invalid input",
            "The request does not match the expected shape.",
            slug="invalid",
            errors=_field_errors(error),
            request=request,
        )

    async def on_http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, StarletteHTTPException)
        title = {404: "Not found", 405: "Method not allowed"}.get(error.status_code, "Error")
        return problem(
            error.status_code,
            title,
            str(error.detail),
            slug=title.lower().replace(" ", "-"),
            request=request,
        )

    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        """Runs in Starlette's outermost middleware, after the request id was unbound from
        the log context and outside the middleware that stamps the header: both are put back
        here, so the client's id finds the log line and its traceback, which the body never
        carries."""
        if is_data_exception(error):
            log.info("input the database refused", path=request.url.path, error=str(error)[:200])
            return problem(
                422,
                "Invalid input",
                "A value cannot be stored or compared (e.g. a NUL character or a number "
                "out of range).",
                slug="invalid-input",
                request=request,
            )
        if isinstance(error, PoolTimeout):  # raised in a middleware (authentication)
            return _busy(request, error)
        request_id = getattr(request.state, "request_id", None) or str(uuid7())
        log.error("unhandled error", path=request.url.path, request_id=request_id, exc_info=error)
        response = problem(
            500,
            "Internal error",
            f"An unexpected error occurred; it has been logged with request id {request_id}.",
            slug="internal",
            request=request,
            extensions={"request_id": request_id},
        )
        response.headers["X-Request-Id"] = request_id
        return response

    async def on_pool_exhausted(request: Request, error: Exception) -> JSONResponse:
        return _busy(request, error)

    app.add_exception_handler(PoolTimeout, on_pool_exhausted)
    app.add_exception_handler(CephaloError, on_cephalo_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(DBAPIError, on_unexpected)
    app.add_exception_handler(Exception, on_unexpected)
