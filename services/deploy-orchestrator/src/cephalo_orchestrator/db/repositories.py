"""All SQL of deploy-orchestrator. Repositories flush; the edge commits."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from cephalo_common.contracts import STEP_DISPATCH
from cephalo_common.db.repository import RepositoryBase
from cephalo_orchestrator.db.models import (
    Interruption,
    OutboxEvent,
    ServerTask,
    StepRun,
    TaskArtifact,
    TaskLogLine,
)

QUEUED = "Queued"
ADVANCING = ("Executing", "Cancelling")
RUNNING_STATES = ("Executing", "Paused", "Cancelling")
_LANE_LOCK_NAMESPACE = b"cephalo-orchestrator-lane:"


@dataclass(frozen=True)
class BlockedTask:
    task_id: uuid.UUID
    reason: str | None
    environment_name: str
    blocking_deployment_id: uuid.UUID


def _lane_key(project_id: uuid.UUID, environment_id: uuid.UUID) -> int:
    """A signed 64-bit advisory-lock key for one project+environment lane."""
    digest = hashlib.blake2b(
        _LANE_LOCK_NAMESPACE + project_id.bytes + environment_id.bytes, digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def _same_lane(other: Any) -> Any:
    return and_(
        other.project_id == ServerTask.project_id,
        other.environment_id == ServerTask.environment_id,
        other.state.in_(RUNNING_STATES),
    )


class TaskRepository(RepositoryBase[ServerTask]):
    model = ServerTask
    noun = "task"

    async def add_if_absent(self, **values: Any) -> ServerTask | None:
        """Insert unless a task for the same deployment exists (then None)."""
        statement = (
            insert(ServerTask)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[ServerTask.deployment_id])
            .returning(ServerTask)
        )
        return (await self.session.scalars(statement)).one_or_none()

    async def find_in_space(self, space_id: uuid.UUID, task_id: uuid.UUID) -> ServerTask | None:
        statement = select(ServerTask).where(
            ServerTask.id == task_id, ServerTask.space_id == space_id
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    def _filtered(
        self, space_id: uuid.UUID, deployment_id: uuid.UUID | None, state: str | None
    ) -> Any:
        statement = select(ServerTask).where(ServerTask.space_id == space_id)
        if deployment_id is not None:
            statement = statement.where(ServerTask.deployment_id == deployment_id)
        if state is not None:
            statement = statement.where(ServerTask.state == state)
        return statement

    async def list_in_space(
        self,
        space_id: uuid.UUID,
        *,
        deployment_id: uuid.UUID | None,
        state: str | None,
        limit: int,
        offset: int,
    ) -> Sequence[ServerTask]:
        statement = (
            self._filtered(space_id, deployment_id, state)
            .order_by(ServerTask.queued_at.desc(), ServerTask.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return await self.list(statement)

    async def count_in_space(
        self, space_id: uuid.UUID, *, deployment_id: uuid.UUID | None, state: str | None
    ) -> int:
        return await self.count(self._filtered(space_id, deployment_id, state))

    async def lock(self, task_id: uuid.UUID) -> ServerTask | None:
        """The task, row-locked for this transaction (waits for other holders)."""
        statement = (
            select(ServerTask)
            .where(ServerTask.id == task_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def count_running_on_node(self, node: str) -> int:
        """Tasks this node works on; a Paused one waits on a person and takes no slot."""
        statement = select(func.count()).where(
            ServerTask.server_node == node, ServerTask.state.in_(ADVANCING)
        )
        return int((await self.session.execute(statement)).scalar_one())

    async def lock_startable(self, limit: int) -> Sequence[ServerTask]:
        """Oldest queued tasks whose lane is free, skipping rows other instances hold."""
        running = aliased(ServerTask)
        statement = (
            select(ServerTask)
            .where(ServerTask.state == QUEUED, ~exists().where(_same_lane(running)))
            .order_by(ServerTask.queued_at, ServerTask.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=ServerTask)
            .execution_options(populate_existing=True)
        )
        return await self.list(statement)

    async def find_startable(self, limit: int) -> Sequence[tuple[uuid.UUID, str | None]]:
        """Oldest queued tasks whose lane is free (id and reason), without locking them."""
        running = aliased(ServerTask)
        statement = (
            select(ServerTask.id, ServerTask.reason)
            .where(ServerTask.state == QUEUED, ~exists().where(_same_lane(running)))
            .order_by(ServerTask.queued_at, ServerTask.id)
            .limit(limit)
        )
        return [(row[0], row[1]) for row in await self.session.execute(statement)]

    async def try_lock_lane(self, project_id: uuid.UUID, environment_id: uuid.UUID) -> bool:
        """Serialise lane decisions across instances until this transaction ends."""
        result = await self.session.execute(
            text("SELECT pg_try_advisory_xact_lock(:key)"),
            {"key": _lane_key(project_id, environment_id)},
        )
        return bool(result.scalar_one())

    async def find_running_in_lane(
        self, project_id: uuid.UUID, environment_id: uuid.UUID
    ) -> ServerTask | None:
        statement = select(ServerTask).where(
            ServerTask.project_id == project_id,
            ServerTask.environment_id == environment_id,
            ServerTask.state.in_(RUNNING_STATES),
        )
        return (await self.session.execute(statement)).scalars().first()

    async def find_blocked(self, limit: int) -> Sequence[BlockedTask]:
        """Queued tasks whose lane is taken, each with the deployment that holds the lane."""
        running = aliased(ServerTask)
        statement = (
            select(
                ServerTask.id,
                ServerTask.reason,
                ServerTask.environment_name,
                running.deployment_id,
            )
            .join(running, _same_lane(running))
            .where(ServerTask.state == QUEUED)
            .order_by(ServerTask.queued_at, ServerTask.id)
            .limit(limit)
        )
        rows = (await self.session.execute(statement)).all()
        return [BlockedTask(row[0], row[1], row[2], row[3]) for row in rows]

    async def lock_queued(self, task_id: uuid.UUID) -> ServerTask | None:
        """The task if it is still queued and no other instance holds it."""
        statement = (
            select(ServerTask)
            .where(ServerTask.id == task_id, ServerTask.state == QUEUED)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def due_step_ids(self, now: datetime, limit: int) -> Sequence[uuid.UUID]:
        statement = (
            select(ServerTask.id)
            .where(ServerTask.state.in_(ADVANCING), ServerTask.step_due_at <= now)
            .order_by(ServerTask.step_due_at)
            .limit(limit)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def lock_due_step(self, task_id: uuid.UUID, now: datetime) -> ServerTask | None:
        """The task if its step is (still) due and no other instance holds it."""
        statement = (
            select(ServerTask)
            .where(
                ServerTask.id == task_id,
                ServerTask.state.in_(ADVANCING),
                ServerTask.step_due_at <= now,
            )
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def mark_stalled_due(self, now: datetime, limit: int) -> Sequence[uuid.UUID]:
        """Executing/Cancelling tasks that wait on nothing (no due time, no running run, no
        held verdict) are made due; returns their ids. A safety net: every transition that
        leaves such a task also makes it due in the same transaction."""
        running = select(StepRun.id).where(
            StepRun.task_id == ServerTask.id,
            (StepRun.state.in_(("Pending", "Running"))) | StepRun.reported.is_not(None),
        )
        stalled = (
            select(ServerTask.id)
            .where(
                ServerTask.state.in_(ADVANCING),
                ServerTask.step_due_at.is_(None),
                ~running.exists(),
            )
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        ids = (await self.session.execute(stalled)).scalars().all()
        if ids:
            await self.session.execute(
                update(ServerTask).where(ServerTask.id.in_(ids)).values(step_due_at=now)
            )
        return ids

    async def renew_leases(self, node: str, until: datetime) -> int:
        """Extend the lease of every running task `node` holds; returns how many."""
        statement = (
            update(ServerTask)
            .where(ServerTask.server_node == node, ServerTask.state.in_(RUNNING_STATES))
            .values(lease_expires_at=until)
        )
        result = await self.session.execute(statement)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def _lease_expired(self, now: datetime) -> Any:
        return and_(
            ServerTask.state.in_(RUNNING_STATES),
            ServerTask.lease_expires_at.is_(None) | (ServerTask.lease_expires_at < now),
        )

    async def expired_lease_ids(self, now: datetime, limit: int) -> Sequence[uuid.UUID]:
        """Running tasks nobody holds: their owner stopped renewing (or never had a lease)."""
        statement = (
            select(ServerTask.id)
            .where(self._lease_expired(now))
            .order_by(ServerTask.lease_expires_at.nulls_first(), ServerTask.id)
            .limit(limit)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def lock_expired(self, task_id: uuid.UUID, now: datetime) -> ServerTask | None:
        """The task if its lease is (still) expired and no other instance holds its row."""
        statement = (
            select(ServerTask)
            .where(ServerTask.id == task_id, self._lease_expired(now))
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def count_by_state(self) -> dict[str, int]:
        statement = select(ServerTask.state, func.count()).group_by(ServerTask.state)
        return {state: int(count) for state, count in (await self.session.execute(statement))}


@dataclass(frozen=True)
class RunProgressRow:
    step_index: int
    machine_id: uuid.UUID | None
    attempt: int
    state: str
    outcome_override: str | None


class StepRunRepository(RepositoryBase[StepRun]):
    model = StepRun
    noun = "step run"

    async def lock(self, run_id: uuid.UUID) -> StepRun | None:
        statement = (
            select(StepRun)
            .where(StepRun.id == run_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def for_step(self, task_id: uuid.UUID, step_index: int) -> Sequence[StepRun]:
        return await self.list(
            select(StepRun)
            .where(StepRun.task_id == task_id, StepRun.step_index == step_index)
            .order_by(StepRun.machine_name, StepRun.id)
        )

    async def overdue_reports(self, before: datetime, limit: int) -> Sequence[uuid.UUID]:
        """Runs holding a verdict since before `before` (their log never caught up)."""
        statement = (
            select(StepRun.id)
            .where(StepRun.reported.is_not(None), StepRun.reported_at < before)
            .order_by(StepRun.reported_at)
            .limit(limit)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def held_unstarted(self, limit: int) -> Sequence[tuple[uuid.UUID, uuid.UUID, str]]:
        """Runs holding a verdict without an exit code that never logged a line: (run id,
        space id, ticket), for the gateway to say whether the script ever started."""
        statement = (
            select(StepRun.id, ServerTask.space_id, StepRun.ticket)
            .join(ServerTask, ServerTask.id == StepRun.task_id)
            .where(
                StepRun.reported.is_not(None),
                StepRun.state == "Pending",
                StepRun.reported["exit_code"].as_string().is_(None),
            )
            .order_by(StepRun.reported_at)
            .limit(limit)
        )
        return [(row[0], row[1], row[2]) for row in await self.session.execute(statement)]

    async def in_flight(self, task_id: uuid.UUID) -> Sequence[StepRun]:
        """Runs on machines that were dispatched and hold no verdict yet."""
        return await self.list(
            select(StepRun)
            .where(
                StepRun.task_id == task_id,
                StepRun.state.in_(("Pending", "Running")),
                StepRun.reported.is_(None),
                StepRun.machine_id.is_not(None),
            )
            .order_by(StepRun.created_at, StepRun.id)
        )

    async def progress_rows(self, task_id: uuid.UUID) -> Sequence[RunProgressRow]:
        """Only what progress is computed from: advancing a task with a thousand runs in
        flight reads these columns instead of a thousand whole runs."""
        statement = select(
            StepRun.step_index,
            StepRun.machine_id,
            StepRun.attempt,
            StepRun.state,
            StepRun.outcome_override,
        ).where(StepRun.task_id == task_id)
        return [
            RunProgressRow(row[0], row[1], row[2], row[3], row[4])
            for row in await self.session.execute(statement)
        ]

    async def for_task(self, task_id: uuid.UUID) -> Sequence[StepRun]:
        return await self.list(
            select(StepRun)
            .where(StepRun.task_id == task_id)
            .order_by(StepRun.step_index, StepRun.attempt, StepRun.machine_name, StepRun.id)
        )


class TaskLogRepository(RepositoryBase[TaskLogLine]):
    model = TaskLogLine
    noun = "task log line"

    async def append_new(self, lines: Iterable[dict[str, Any]]) -> int:
        """Insert lines; one already stored (same run and sequence) is skipped. Returns added."""
        rows = list(lines)
        if not rows:
            return 0
        statement = (
            insert(TaskLogLine)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[TaskLogLine.step_run_id, TaskLogLine.sequence])
            .returning(TaskLogLine.id)
        )
        return len((await self.session.execute(statement)).all())

    async def after(self, task_id: uuid.UUID, after: int, limit: int) -> Sequence[TaskLogLine]:
        return await self.list(
            select(TaskLogLine)
            .where(TaskLogLine.task_id == task_id, TaskLogLine.id > after)
            .order_by(TaskLogLine.id)
            .limit(limit)
        )


class InterruptionRepository(RepositoryBase[Interruption]):
    model = Interruption
    noun = "interruption"

    async def find_in_task(
        self, space_id: uuid.UUID, task_id: uuid.UUID, interruption_id: uuid.UUID
    ) -> Interruption | None:
        statement = select(Interruption).where(
            Interruption.id == interruption_id,
            Interruption.task_id == task_id,
            Interruption.space_id == space_id,
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def for_task(self, task_id: uuid.UUID) -> Sequence[Interruption]:
        return await self.list(
            select(Interruption)
            .where(Interruption.task_id == task_id)
            .order_by(Interruption.created_at, Interruption.id)
        )

    async def pending_for_task(self, task_id: uuid.UUID) -> Sequence[Interruption]:
        return await self.list(
            select(Interruption)
            .where(Interruption.task_id == task_id, Interruption.is_pending)
            .with_for_update()
        )

    async def count_pending(self, task_id: uuid.UUID) -> int:
        return await self.count(
            select(Interruption).where(Interruption.task_id == task_id, Interruption.is_pending)
        )


class OutboxQueries:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def unsent_dispatches(self, tickets: Sequence[str]) -> set[str]:
        """Which of `tickets` still wait in the outbox for the relay to send their dispatch."""
        if not tickets:
            return set()
        rows = await self.session.execute(
            select(OutboxEvent.payload).where(
                OutboxEvent.published_at.is_(None), OutboxEvent.type == STEP_DISPATCH.type
            )
        )
        payloads = [bytes(row[0]) for row in rows]
        return {ticket for ticket in tickets if any(ticket.encode() in p for p in payloads)}


class TaskArtifactRepository(RepositoryBase[TaskArtifact]):
    model = TaskArtifact
    noun = "artifact"

    async def add_new(self, rows: Iterable[dict[str, Any]]) -> None:
        """Insert artifacts; one already recorded (same object) is skipped."""
        values = list(rows)
        if values:
            statement = (
                insert(TaskArtifact)
                .values(values)
                .on_conflict_do_nothing(index_elements=[TaskArtifact.object_name])
            )
            await self.session.execute(statement)

    async def of_task(self, task_id: uuid.UUID) -> Sequence[TaskArtifact]:
        return await self.list(
            select(TaskArtifact)
            .where(TaskArtifact.task_id == task_id)
            .order_by(TaskArtifact.created_at, TaskArtifact.id)
        )

    async def find_in_task(self, task_id: uuid.UUID, artifact_id: uuid.UUID) -> TaskArtifact | None:
        found: TaskArtifact | None = await self.session.scalar(
            select(TaskArtifact).where(
                TaskArtifact.task_id == task_id, TaskArtifact.id == artifact_id
            )
        )
        return found


class Repositories:
    """Every repository of this service over one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.tasks = TaskRepository(session)
        self.step_runs = StepRunRepository(session)
        self.log = TaskLogRepository(session)
        self.interruptions = InterruptionRepository(session)
        self.outbox = OutboxQueries(session)
        self.artifacts = TaskArtifactRepository(session)
