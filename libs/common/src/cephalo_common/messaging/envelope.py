"""CloudEvents 1.0 (structured JSON mode): the one envelope every message travels in."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from cephalo_common.ids import utc_now, uuid7

Data = TypeVar("Data", bound=BaseModel)
CONTENT_TYPE = "application/cloudevents+json"


class Envelope(BaseModel):
    """`id` is a UUIDv7 and doubles as `Nats-Msg-Id`; `data` is a versioned contract model."""

    model_config = ConfigDict(extra="forbid")

    specversion: str = "1.0"
    id: str = Field(default_factory=lambda: str(uuid7()))
    source: str
    type: str
    subject: str | None = None
    time: datetime = Field(default_factory=utc_now)
    datacontenttype: str = "application/json"
    cephalospace: str
    correlationid: str | None = None
    causationid: str | None = None
    traceparent: str | None = None
    data: dict[str, Any]

    def payload(self, model: builtins.type[Data]) -> Data:
        """The data parsed as `model`; unknown fields from newer producers are ignored."""
        return model.model_validate(self.data)

    def to_bytes(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)


def new_envelope(
    *,
    source: str,
    type: str,
    space: str,
    data: BaseModel,
    subject: str | None = None,
    caused_by: Envelope | None = None,
    correlation_id: str | None = None,
) -> Envelope:
    """Build an envelope; when caused by another event, carry its correlation forward."""
    correlation = correlation_id or (
        (caused_by.correlationid or caused_by.id) if caused_by else None
    )
    return Envelope(
        source=source,
        type=type,
        subject=subject,
        cephalospace=space,
        correlationid=correlation,
        causationid=caused_by.id if caused_by else None,
        data=data.model_dump(mode="json"),
    )
