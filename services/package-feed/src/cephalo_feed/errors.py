"""Errors of this service beyond the common ones, rendered as problems with their status."""

from __future__ import annotations

from cephalo_common.errors import CephaloError


class PayloadTooLarge(CephaloError):
    status_code = 413
    title = "Payload too large"
    type_slug = "payload-too-large"


class RequestTimeout(CephaloError):
    status_code = 408
    title = "Request timeout"
    type_slug = "request-timeout"


class ClientGone(CephaloError):
    """The client disconnected mid-upload; nobody reads the answer, but the log does."""

    status_code = 400
    title = "Upload interrupted"
    type_slug = "upload-interrupted"


class RangeNotSatisfiable(CephaloError):
    status_code = 416
    title = "Range not satisfiable"
    type_slug = "range-not-satisfiable"

    def __init__(self, detail: str, *, size: int) -> None:
        super().__init__(detail)
        self.size = size


class PreconditionFailed(CephaloError):
    status_code = 412
    title = "Precondition failed"
    type_slug = "precondition-failed"
