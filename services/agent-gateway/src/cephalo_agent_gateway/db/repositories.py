"""All SQL of agent-gateway. Repositories flush; the edge commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, Generic, TypeVar

from sqlalchemy import Text, and_, delete, func, or_, select, true, update
from sqlalchemy.dialects.postgresql import array, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_agent_gateway.db.models import (
    HealthCheck,
    Machine,
    MachinePolicy,
    PendingRegistration,
    ScriptRun,
    SshHostKeyEvent,
    WorkerPool,
)
from cephalo_common.db.repository import RepositoryBase
from cephalo_common.errors import Conflict
from cephalo_common.ids import uuid7

COMPLETE = "Complete"
TARGET = "target"
WORKER = "worker"
SSH = "ssh"  # the mode of SSH targets: no agent, no certificate
OFFLINE_DROP = "offline-drop"  # steps become bundles to download: no agent, no certificate


class MachineRepository(RepositoryBase[Machine]):
    model = Machine
    noun = "machine"

    async def find_in_space(
        self, space_id: uuid.UUID, id: uuid.UUID, *, kind: str | None = None
    ) -> Machine | None:
        statement = select(Machine).where(Machine.id == id, Machine.space_id == space_id)
        if kind is not None:
            statement = statement.where(Machine.kind == kind)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_by_name(self, space_id: uuid.UUID, name: str) -> Machine | None:
        statement = select(Machine).where(
            Machine.space_id == space_id, Machine.name_key == name.lower()
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_by_thumbprint(self, thumbprint: str) -> Machine | None:
        statement = select(Machine).where(Machine.thumbprint == thumbprint.upper())
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def search(
        self,
        space_id: uuid.UUID,
        *,
        environment_id: uuid.UUID | None = None,
        roles: Sequence[str] = (),
    ) -> Sequence[Machine]:
        """Targets of the space in `environment_id` (if given) with ANY of `roles` (if any)."""
        statement = select(Machine).where(Machine.space_id == space_id, Machine.kind == TARGET)
        if environment_id is not None:
            statement = statement.where(Machine.environment_ids.contains([str(environment_id)]))
        if roles:
            statement = statement.where(Machine.roles.has_any(array(list(roles), type_=Text)))
        return await self.list(statement.order_by(Machine.name_key))

    async def workers(
        self, space_id: uuid.UUID, *, worker_pool_id: uuid.UUID | None = None
    ) -> Sequence[Machine]:
        statement = select(Machine).where(Machine.space_id == space_id, Machine.kind == WORKER)
        if worker_pool_id is not None:
            statement = statement.where(Machine.worker_pool_ids.contains([str(worker_pool_id)]))
        return await self.list(statement.order_by(Machine.name_key))

    async def least_busy_workers(
        self, space_id: uuid.UUID, worker_pool_id: uuid.UUID, *, statuses: Sequence[str]
    ) -> Sequence[tuple[Machine, int]]:
        """Enabled workers of the pool in one of `statuses`, the fewest unfinished runs first."""
        busy = (
            select(func.count())
            .select_from(ScriptRun)
            .where(ScriptRun.machine_id == Machine.id, ScriptRun.state != "Complete")
            .correlate(Machine)
            .scalar_subquery()
        )
        statement = (
            select(Machine, busy)
            .where(
                Machine.space_id == space_id,
                Machine.kind == WORKER,
                Machine.is_disabled.is_(False),
                Machine.health_status.in_(list(statuses)),
                Machine.worker_pool_ids.contains([str(worker_pool_id)]),
            )
            .order_by(busy, Machine.name_key)
        )
        rows = (await self.session.execute(statement)).all()
        return [(row[0], int(row[1])) for row in rows]

    async def count_in_pool(self, worker_pool_id: uuid.UUID) -> int:
        return await self.count(
            select(Machine.id).where(Machine.worker_pool_ids.contains([str(worker_pool_id)]))
        )

    async def count_with_policy(self, policy_id: uuid.UUID) -> int:
        return await self.count(select(Machine.id).where(Machine.machine_policy_id == policy_id))

    async def insert(self, machine: Machine) -> Machine:
        """Add the machine; a concurrent duplicate name or certificate is a Conflict, not a 500."""
        try:
            async with self.session.begin_nested():
                self.session.add(machine)
                await self.session.flush()
        except IntegrityError as error:
            what = "certificate" if "thumbprint" in str(error.orig) else "name"
            raise Conflict(f"another machine was just registered with the same {what}") from error
        return machine

    async def remove(self, machine: Machine) -> None:
        await self.session.execute(delete(Machine).where(Machine.id == machine.id))

    async def touch(self, id: uuid.UUID, seen_at: datetime) -> None:
        await self.session.execute(
            update(Machine).where(Machine.id == id).values(last_seen_at=seen_at)
        )

    async def certificates_since(self, since: datetime | None) -> list[tuple[str, str, datetime]]:
        """Certificates of machines created since `since` (all when None): the trust store."""
        statement = select(Machine.certificate_pem, Machine.thumbprint, Machine.created_at).where(
            Machine.mode.not_in((SSH, OFFLINE_DROP))
        )
        if since is not None:
            statement = statement.where(Machine.created_at >= since)
        rows = (await self.session.execute(statement.order_by(Machine.created_at))).all()
        return [(row[0], row[1], row[2]) for row in rows]

    async def claim_due_health_checks(
        self, *, limit: int, claim_seconds: float
    ) -> Sequence[uuid.UUID]:
        """Machines whose health check is due, moved `claim_seconds` ahead so that no other
        replica checks them meanwhile (a crashed checker's claim simply expires)."""
        due = (
            select(Machine.id)
            .where(
                Machine.is_disabled.is_(False),
                or_(Machine.health_next_at.is_(None), Machine.health_next_at <= func.now()),
            )
            .order_by(Machine.health_next_at.asc().nulls_first())
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = (
            update(Machine)
            .where(Machine.id.in_(due))
            .values(health_next_at=func.now() + timedelta(seconds=claim_seconds))
            .returning(Machine.id)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def record_health(
        self,
        id: uuid.UUID,
        *,
        status: str,
        message: str,
        checked_at: datetime,
        next_at: datetime,
    ) -> None:
        await self.session.execute(
            update(Machine)
            .where(Machine.id == id)
            .values(
                health_status=status,
                health_message=message,
                health_checked_at=checked_at,
                health_next_at=next_at,
            )
            .execution_options(synchronize_session=False)
        )

    async def reschedule_health_checks(
        self, space_id: uuid.UUID, policy_id: uuid.UUID, *, include_unassigned: bool, at: datetime
    ) -> None:
        """The policy's machines (and those without a policy, for a default) next check `at`."""
        follows = Machine.machine_policy_id == policy_id
        if include_unassigned:
            follows = or_(follows, Machine.machine_policy_id.is_(None))
        await self.session.execute(
            update(Machine)
            .where(follows, Machine.space_id == space_id)
            .values(health_next_at=at)
            .execution_options(synchronize_session=False)
        )

    async def schedule_health_check(self, id: uuid.UUID, at: datetime | None) -> None:
        await self.session.execute(
            update(Machine)
            .where(Machine.id == id)
            .values(health_next_at=at)
            .execution_options(synchronize_session=False)
        )


class PendingRegistrationRepository(RepositoryBase[PendingRegistration]):
    model = PendingRegistration
    noun = "pending registration"

    async def upsert(self, values: dict[str, Any], *, seen_at: datetime) -> PendingRegistration:
        """One row per certificate: a repeated request counts an attempt and refreshes it."""
        inserting = insert(PendingRegistration).values(
            id=uuid7(), attempts=1, last_seen_at=seen_at, **values
        )
        excluded = inserting.excluded
        statement = inserting.on_conflict_do_update(
            index_elements=[PendingRegistration.thumbprint],
            set_={
                "space_id": excluded.space_id,
                "name": excluded.name,
                "kind": excluded.kind,
                "mode": excluded.mode,
                "uri": excluded.uri,
                "remote_address": excluded.remote_address,
                "attempts": PendingRegistration.attempts + 1,
                "last_seen_at": seen_at,
                "updated_at": func.now(),
            },
        ).returning(PendingRegistration)
        result = await self.session.execute(
            statement, execution_options={"populate_existing": True}
        )
        pending: PendingRegistration = result.scalar_one()
        return pending

    async def prune(self, space_id: uuid.UUID, keep: int) -> None:
        """Drop the oldest beyond `keep` in the space (an unauthenticated table stays bounded)."""
        newest = (
            select(PendingRegistration.id)
            .where(PendingRegistration.space_id == space_id)
            .order_by(PendingRegistration.last_seen_at.desc())
            .limit(keep)
        )
        await self.session.execute(
            delete(PendingRegistration).where(
                PendingRegistration.space_id == space_id,
                PendingRegistration.id.not_in(newest),
            )
        )

    async def in_space(self, space_id: uuid.UUID) -> Sequence[PendingRegistration]:
        return await self.list(
            select(PendingRegistration)
            .where(PendingRegistration.space_id == space_id)
            .order_by(PendingRegistration.last_seen_at.desc())
        )

    async def find_in_space(self, space_id: uuid.UUID, id: uuid.UUID) -> PendingRegistration | None:
        statement = select(PendingRegistration).where(
            PendingRegistration.id == id, PendingRegistration.space_id == space_id
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def remove(self, pending: PendingRegistration) -> None:
        await self.session.execute(
            delete(PendingRegistration).where(PendingRegistration.id == pending.id)
        )


Named = TypeVar("Named", WorkerPool, MachinePolicy)


class _Named(RepositoryBase[Named], Generic[Named]):
    """Space-scoped rows with a case-insensitive unique name and one default per space."""

    async def in_space(self, space_id: uuid.UUID) -> Sequence[Named]:
        model = self.model
        return await self.list(
            select(model).where(model.space_id == space_id).order_by(model.name_key)
        )

    async def find_in_space(self, space_id: uuid.UUID, id: uuid.UUID) -> Named | None:
        model = self.model
        statement = select(model).where(model.id == id, model.space_id == space_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_by_name(self, space_id: uuid.UUID, name: str) -> Named | None:
        model = self.model
        statement = select(model).where(model.space_id == space_id, model.name_key == name.lower())
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_default(self, space_id: uuid.UUID) -> Named | None:
        model = self.model
        statement = select(model).where(model.space_id == space_id, model.is_default.is_(true()))
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def ensure_default(self, space_id: uuid.UUID, values: dict[str, Any]) -> Named:
        """The space's default row, created on first use (concurrent callers get the same)."""
        statement = (
            insert(self.model)
            .values(id=uuid7(), space_id=space_id, is_default=True, **values)
            .on_conflict_do_nothing()
        )
        await self.session.execute(statement)
        found = await self.find_default(space_id)
        if found is None:
            raise Conflict(f"a {self.noun} named {values.get('name')!r} already exists")
        return found

    async def insert(self, row: Named) -> Named:
        try:
            async with self.session.begin_nested():
                self.session.add(row)
                await self.session.flush()
        except IntegrityError as error:
            raise Conflict(f"a {self.noun} named {row.name!r} already exists") from error
        return row

    async def remove(self, row: Named) -> None:
        await self.session.execute(delete(self.model).where(self.model.id == row.id))

    async def save(self, row: Named) -> Named:
        try:
            async with self.session.begin_nested():
                await self.session.flush()
        except IntegrityError as error:
            raise Conflict(f"a {self.noun} named {row.name!r} already exists") from error
        return row


class WorkerPoolRepository(_Named[WorkerPool]):
    model = WorkerPool
    noun = "worker pool"


class MachinePolicyRepository(_Named[MachinePolicy]):
    model = MachinePolicy
    noun = "machine policy"


class HealthCheckRepository(RepositoryBase[HealthCheck]):
    model = HealthCheck
    noun = "health check"

    async def history(self, machine_id: uuid.UUID, limit: int) -> Sequence[HealthCheck]:
        return await self.list(
            select(HealthCheck)
            .where(HealthCheck.machine_id == machine_id)
            .order_by(HealthCheck.created_at.desc(), HealthCheck.id.desc())
            .limit(limit)
        )

    async def prune(self, machine_id: uuid.UUID, keep: int) -> None:
        newest = (
            select(HealthCheck.id)
            .where(HealthCheck.machine_id == machine_id)
            .order_by(HealthCheck.created_at.desc(), HealthCheck.id.desc())
            .limit(keep)
        )
        await self.session.execute(
            delete(HealthCheck).where(
                HealthCheck.machine_id == machine_id, HealthCheck.id.not_in(newest)
            )
        )


class ScriptRunRepository:
    """Script runs by ticket; updates are guarded so a stale driver changes nothing."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def insert_if_absent(self, values: dict[str, Any]) -> bool:
        """Record a dispatch; False when its ticket was already recorded."""
        statement = (
            insert(ScriptRun)
            .values(**values)
            .on_conflict_do_nothing(index_elements=[ScriptRun.ticket])
            .returning(ScriptRun.ticket)
        )
        return (await self.session.execute(statement)).first() is not None

    async def find(self, ticket: str) -> ScriptRun | None:
        return await self.session.get(ScriptRun, ticket, populate_existing=True)

    async def find_in_space(self, space_id: uuid.UUID, ticket: str) -> ScriptRun | None:
        run = await self.find(ticket)
        return run if run is not None and run.space_id == space_id else None

    async def claim(
        self, driver: str, *, lease_seconds: float, limit: int, adopt_own: bool = False
    ) -> Sequence[str]:
        """Unfinished runs nobody holds (or whose holder's lease ran out), now held by `driver`.

        `adopt_own` also takes back the runs `driver` still holds (after a restart under the
        same name, or a driver that failed): it rewrites every one of them, so it is rare.
        """
        held_by_nobody = or_(ScriptRun.lease_until.is_(None), ScriptRun.lease_until < func.now())
        free = (
            select(ScriptRun.ticket)
            .where(
                ScriptRun.state != COMPLETE,
                or_(held_by_nobody, ScriptRun.driver == driver) if adopt_own else held_by_nobody,
            )
            .order_by(ScriptRun.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        statement = (
            update(ScriptRun)
            .where(ScriptRun.ticket.in_(free))
            .values(driver=driver, lease_until=func.now() + timedelta(seconds=lease_seconds))
            .returning(ScriptRun.ticket)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def renew(
        self, driver: str, tickets: Sequence[str], *, lease_seconds: float
    ) -> Sequence[str]:
        """Extend `driver`'s leases; returns the tickets it still holds."""
        if not tickets:
            return []
        statement = (
            update(ScriptRun)
            .where(
                ScriptRun.ticket.in_(list(tickets)),
                ScriptRun.driver == driver,
                ScriptRun.state != COMPLETE,
            )
            .values(lease_until=func.now() + timedelta(seconds=lease_seconds))
            .returning(ScriptRun.ticket)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(statement)).scalars().all()

    async def release(self, driver: str) -> None:
        """Give up `driver`'s unfinished runs so another replica takes them at once."""
        await self.session.execute(
            update(ScriptRun)
            .where(ScriptRun.driver == driver, ScriptRun.state != COMPLETE)
            .values(driver=None, lease_until=None)
            .execution_options(synchronize_session=False)
        )

    async def cancel_requested(self, tickets: Sequence[str]) -> Sequence[str]:
        if not tickets:
            return []
        statement = select(ScriptRun.ticket).where(
            ScriptRun.ticket.in_(list(tickets)),
            ScriptRun.state != COMPLETE,
            ScriptRun.cancel_requested_at.is_not(None),
        )
        return (await self.session.execute(statement)).scalars().all()

    async def request_cancel(self, ticket: str, at: datetime) -> bool:
        return await self._guarded_update(
            ScriptRun.ticket == ticket,
            ScriptRun.state != COMPLETE,
            ScriptRun.cancel_requested_at.is_(None),
            values={"cancel_requested_at": at},
        )

    async def unfinished_tickets(self) -> Sequence[str]:
        result = await self.session.execute(
            select(ScriptRun.ticket)
            .where(ScriptRun.state != COMPLETE)
            .order_by(ScriptRun.created_at)
        )
        return result.scalars().all()

    async def mark_running(
        self, ticket: str, *, dispatch: dict[str, Any], started_at: datetime
    ) -> bool:
        return await self._guarded_update(
            ScriptRun.ticket == ticket,
            ScriptRun.state != COMPLETE,
            values={"state": "Running", "dispatch": dispatch, "started_at": started_at},
        )

    async def advance_cursor(self, ticket: str, *, expected: int, new: int) -> bool:
        return await self._guarded_update(
            ScriptRun.ticket == ticket,
            ScriptRun.state != COMPLETE,
            ScriptRun.last_log_sequence == expected,
            values={"last_log_sequence": new},
        )

    async def finish(
        self,
        ticket: str,
        *,
        exit_code: int | None,
        error: str | None,
        outcome: str,
        dispatch: dict[str, Any],
        finished_at: datetime,
        started_at: datetime | None = None,
        cursor: tuple[int, int] | None = None,
    ) -> bool:
        """`started_at` for a run that went from Pending straight to Complete; `cursor`
        (expected, new) moves the log cursor in the same statement, only from `expected`."""
        conditions = [ScriptRun.ticket == ticket, ScriptRun.state != COMPLETE]
        values: dict[str, Any] = {
            "state": COMPLETE,
            "exit_code": exit_code,
            "error": error,
            "outcome": outcome,
            "dispatch": dispatch,
            "finished_at": finished_at,
            "lease_until": None,
        }
        if started_at is not None:
            values["started_at"] = started_at
        if cursor is not None:
            conditions.append(ScriptRun.last_log_sequence == cursor[0])
            values["last_log_sequence"] = cursor[1]
        return await self._guarded_update(*conditions, values=values)

    async def _guarded_update(self, *conditions: Any, values: dict[str, Any]) -> bool:
        statement = (
            update(ScriptRun)
            .where(and_(*conditions))
            .values(**values)
            .returning(ScriptRun.ticket)
            .execution_options(synchronize_session=False)
        )
        return (await self.session.execute(statement)).first() is not None


class SshRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def host_key_events(self, machine_id: uuid.UUID, limit: int) -> Sequence[SshHostKeyEvent]:
        statement = (
            select(SshHostKeyEvent)
            .where(SshHostKeyEvent.machine_id == machine_id)
            .order_by(SshHostKeyEvent.created_at.desc(), SshHostKeyEvent.id.desc())
            .limit(limit)
        )
        return (await self.session.execute(statement)).scalars().all()


class Repositories:
    """Every repository of this service over one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.machines = MachineRepository(session)
        self.script_runs = ScriptRunRepository(session)
        self.pending = PendingRegistrationRepository(session)
        self.worker_pools = WorkerPoolRepository(session)
        self.machine_policies = MachinePolicyRepository(session)
        self.health_checks = HealthCheckRepository(session)
        self.ssh = SshRepository(session)
