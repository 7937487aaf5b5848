"""Transactional outbox: a state change and its event commit together; a relay publishes later.

Producers call `emit()` inside the handler's transaction. `OutboxRelay` claims unpublished
rows with `FOR UPDATE SKIP LOCKED` (several relays are safe), publishes each with
`Nats-Msg-Id` = event id, and marks it sent. If NATS is down the rows wait; nothing is lost.
A row whose kind carries sensitive values (`EventKind.carries_secrets`) keeps only its
envelope once published: the data is wiped, so no secret stays in the table in clear.
A batch is published pipelined (every publish sent in order, then the acks awaited
together): one round trip per batch instead of one per event.
When NATS loses its store, or may have lost the last messages it acknowledged before it was
killed, `replay_published_since` marks recent rows unpublished again, so events a consumer
had not fetched yet are fed again from PostgreSQL (a row whose data was
wiped cannot be: its work is recovered by the owning service's reconciliation).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    DateTime,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from cephalo_common.contracts import SECRET_BEARING_TYPES, EventKind
from cephalo_common.ids import utc_now
from cephalo_common.logging import get_logger
from cephalo_common.messaging.broker import Broker
from cephalo_common.messaging.envelope import Envelope, new_envelope

log = get_logger(__name__)
_DIRTY = "cephalo_outbox_dirty"


class OutboxMixin:
    """Columns of a service's `outbox` table; the row id is the event id."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(255))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)

    @declared_attr.directive
    def __table_args__(cls) -> tuple[Any, ...]:
        return (
            Index(
                f"ix_{cls.__tablename__}__pending",  # type: ignore[attr-defined]
                "created_at",
                postgresql_where=text("published_at IS NULL"),
            ),
        )


def emit(
    session: AsyncSession,
    outbox_model: type[Any],
    kind: EventKind,
    envelope: Envelope,
) -> Envelope:
    """Write `envelope` to the outbox in the caller's transaction."""
    session.add(
        outbox_model(
            id=uuid.UUID(envelope.id),
            subject=kind.subject(envelope.cephalospace),
            type=envelope.type,
            payload=envelope.to_bytes(),
        )
    )
    session.info[_DIRTY] = True
    return envelope


REDACTED = {"redacted": "published; the data carried sensitive values and was wiped"}


def _published(row: OutboxMixin) -> None:
    row.published_at = utc_now()
    if row.type in SECRET_BEARING_TYPES:
        envelope = Envelope.from_bytes(row.payload)
        row.payload = envelope.model_copy(update={"data": REDACTED}).to_bytes()


def emit_event(
    session: AsyncSession,
    outbox_model: type[Any],
    kind: EventKind,
    *,
    source: str,
    space: str,
    data: Any,
    subject: str | None = None,
    caused_by: Envelope | None = None,
) -> Envelope:
    """Build the envelope for `kind` and write it to the outbox."""
    envelope = new_envelope(
        source=source, type=kind.type, space=space, data=data, subject=subject, caused_by=caused_by
    )
    return emit(session, outbox_model, kind, envelope)


class OutboxRelay:
    """Publishes committed outbox rows; woken right after a commit that wrote one."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        outbox_model: type[OutboxMixin],
        broker: Broker,
        *,
        batch_size: int = 100,
        poll_seconds: float = 0.5,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._model = outbox_model
        self._broker = broker
        self._batch_size = batch_size
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        sync_class = cast(Any, sessionmaker.kw["sync_session_class"])
        event.listen(sync_class, "after_commit", self._after_commit)

    def _after_commit(self, session: Any) -> None:
        if session.info.pop(_DIRTY, False):
            self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Relay until cancelled; errors (NATS or Postgres down) back off and retry."""
        delay = self._poll_seconds
        while True:
            try:
                published = await self.relay_once()
                delay = self._poll_seconds
            except Exception as error:  # noqa: BLE001 - the relay must outlive any outage
                log.warning("outbox relay failed; retrying", error=str(error))
                published = 0
                delay = min(delay * 2, 10.0)
            if published >= self._batch_size:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._wake.wait()

    async def replay_published_since(self, since: datetime) -> int:
        """Mark rows published since `since` unpublished again (their data intact) and wake
        the relay; returns how many."""
        model = self._model
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                update(model)
                .where(model.published_at >= since, model.type.not_in(SECRET_BEARING_TYPES))
                .values(published_at=None)
            )
        count = int(getattr(result, "rowcount", 0) or 0)
        log.info("outbox rows to publish again", rows=count, since=since.isoformat())
        self.wake()
        return count

    async def relay_once(self) -> int:
        """Publish one batch; rows whose publish was acked are marked, then a failure raises."""
        model = self._model
        failure: Exception | None = None
        async with self._sessionmaker() as session, session.begin():
            rows = (
                (
                    await session.execute(
                        select(model)
                        .where(model.published_at.is_(None))
                        .order_by(model.created_at, model.id)
                        .limit(self._batch_size)
                        .with_for_update(skip_locked=True)
                    )
                )
                .scalars()
                .all()
            )
            outcomes = await asyncio.gather(
                *(
                    self._broker.publish(row.subject, Envelope.from_bytes(row.payload))
                    for row in rows
                ),
                return_exceptions=True,
            )
            for row, outcome in zip(rows, outcomes, strict=True):
                if isinstance(outcome, asyncio.CancelledError):
                    raise outcome
                if isinstance(outcome, Exception):
                    row.attempts += 1
                    row.last_error = str(outcome)[:1000]
                    failure = failure or outcome
                else:
                    _published(row)
        if failure is not None:
            raise failure
        return len(rows)


async def pending_count(session: AsyncSession, outbox_model: type[OutboxMixin]) -> int:
    """Unpublished rows: the relay's lag, exported as a metric."""
    result = await session.execute(
        select(func.count()).select_from(outbox_model).where(outbox_model.published_at.is_(None))
    )
    return int(result.scalar_one())
