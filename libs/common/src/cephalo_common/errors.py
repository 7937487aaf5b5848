"""Typed domain errors that carry their HTTP status, rendered as RFC 9457 problems."""

from __future__ import annotations

from typing import Any


class CephaloError(Exception):
    """Base of every expected error; anything else reaching a client is a bug (500)."""

    status_code = 400
    title = "Bad request"
    type_slug = "bad-request"

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []


class Invalid(CephaloError):
    status_code = 422
    title = "Invalid input"
    type_slug = "invalid"


class NotFound(CephaloError):
    status_code = 404
    title = "Not found"
    type_slug = "not-found"


class Conflict(CephaloError):
    status_code = 409
    title = "Conflict"
    type_slug = "conflict"


class Forbidden(CephaloError):
    status_code = 403
    title = "Forbidden"
    type_slug = "forbidden"


class Unauthorized(CephaloError):
    status_code = 401
    title = "Unauthorized"
    type_slug = "unauthorized"


class Unavailable(CephaloError):
    status_code = 503
    title = "Service unavailable"
    type_slug = "unavailable"
