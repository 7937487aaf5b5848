"""Errors only the gateway raises; rendered as problems like every `CephaloError`."""

from __future__ import annotations

from cephalo_common.errors import CephaloError


class GatewayTimeout(CephaloError):
    status_code = 504
    title = "Gateway timeout"
    type_slug = "gateway-timeout"


class ClientDisconnected(CephaloError):
    """The client went away before sending the whole body; nothing useful can be answered."""

    status_code = 400
    title = "Incomplete request"
    type_slug = "incomplete-request"
