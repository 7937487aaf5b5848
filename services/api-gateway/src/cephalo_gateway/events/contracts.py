"""Payloads of the gateway's own events. Only the gateway publishes them, so they live here
rather than in `cephalo_common.contracts`; consumers arrive with webhooks and SSE."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from cephalo_common.contracts import Contract


class AuditRecordedV1(Contract):
    """`cephalo.gateway.audit.recorded.v1`: one row of the audit log."""

    audit_event_id: str
    occurred_at: datetime
    method: str
    path: str
    status: int
    space_id: str | None = None
    actor: str
    request_id: str
    upstream: str
    category: str | None = None
    user_id: str | None = None
    ip_address: str | None = None
    changes: dict[str, Any] | None = None
    """The row's redacted body summary (see the gateway README, "Audit log")."""
