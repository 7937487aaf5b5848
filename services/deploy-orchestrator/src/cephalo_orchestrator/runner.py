"""The task runner: starts queued tasks and due steps, on every instance at once.

Work is shared through the database, never through memory: queued tasks and due steps are
claimed with `FOR UPDATE SKIP LOCKED`, so any number of instances can run this loop. It wakes
every `task_poll_seconds`, or at once when this instance made a step due.

Each instance holds the tasks it started under a lease it renews on a heartbeat; on its first
tick and on every sweep it adopts running tasks whose lease ran out (their instance died),
after settling their in-flight runs with agent-gateway (`domain.adoption`).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_common.db.session import unit_of_work
from cephalo_common.ids import utc_now, uuid7
from cephalo_common.logging import get_logger
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain.adoption import adopt_task
from cephalo_orchestrator.domain.execution import advance_task
from cephalo_orchestrator.domain.packages import PackageSource
from cephalo_orchestrator.domain.planning import Limits
from cephalo_orchestrator.domain.steps import apply_overdue_verdict, settle_unstarted
from cephalo_orchestrator.domain.targets import MachineDirectory, ScriptRuns, TargetsUnavailable
from cephalo_orchestrator.domain.tasks import note_waiting_tasks, start_queued_tasks
from cephalo_orchestrator.settings import OrchestratorSettings

log = get_logger(__name__)
DUE_STEPS_PER_TICK = 10
ADOPTIONS_PER_SWEEP = 20
MAX_IDLE_AFTER_ERROR_SECONDS = 10.0


def node_name() -> str:
    """This process's name on tasks it starts (the per-instance cap counts by it)."""
    return f"{socket.gethostname()}-{uuid7().hex[-8:]}"


class TaskRunner:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        directory: MachineDirectory,
        scripts: ScriptRuns,
        packages: PackageSource,
        settings: OrchestratorSettings,
        node: str,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._directory = directory
        self._scripts = scripts
        self._packages = packages
        self._settings = settings
        self.node = node
        self._wake = asyncio.Event()
        self._swept_at: datetime | None = None
        self._renewed_at: datetime | None = None
        self._housekept_at: datetime | None = None

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Loop until cancelled; a failing tick (database down) backs off and tries again.
        Orphaned tasks are adopted beside it, so asking agent-gateway about their runs never
        delays starting or advancing the others."""
        adoption = asyncio.create_task(self._adopt_forever(), name="task-adoption")
        try:
            await self._tick_forever()
        finally:
            adoption.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await adoption

    async def _tick_forever(self) -> None:
        delay = self._settings.task_poll_seconds
        while True:
            self._wake.clear()
            try:
                await self.tick()
                delay = self._settings.task_poll_seconds
            except Exception as error:  # noqa: BLE001 - the runner must outlive any outage
                log.warning("task runner tick failed; retrying", error=str(error))
                delay = min(delay * 2, MAX_IDLE_AFTER_ERROR_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    def _housekeeping_due(self) -> bool:
        now = utc_now()
        every = timedelta(seconds=self._settings.task_poll_seconds)
        if self._housekept_at is not None and now - self._housekept_at < every:
            return False
        self._housekept_at = now
        return True

    async def _housekeep(self) -> None:
        async with unit_of_work(self._sessionmaker) as session:
            await note_waiting_tasks(Repositories(session))
        await self._renew_leases()
        await self._settle_unstarted()
        await self._apply_overdue_verdicts()
        await self._sweep()

    def _lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self._settings.lease_seconds)

    async def tick(self) -> None:
        """Start queued tasks and advance due ones; the housekeeping (waiting reasons,
        leases, held verdicts, the sweep) at most every `task_poll_seconds`, however often
        verdicts wake the runner."""
        async with unit_of_work(self._sessionmaker) as session:
            now = utc_now()
            await start_queued_tasks(
                Repositories(session),
                node=self.node,
                max_concurrent=self._settings.max_concurrent_tasks,
                now=now,
                lease_until=self._lease_until(now),
            )
        if self._housekeeping_due():
            await self._housekeep()
        async with unit_of_work(self._sessionmaker) as session:
            due = await Repositories(session).tasks.due_step_ids(utc_now(), DUE_STEPS_PER_TICK)
        await asyncio.gather(*(self._advance(task_id) for task_id in due))

    async def _renew_leases(self) -> None:
        """The heartbeat: every third of `lease_seconds`, extend the leases this node holds."""
        now = utc_now()
        every = timedelta(seconds=self._settings.lease_seconds / 3)
        if self._renewed_at is not None and now - self._renewed_at < every:
            return
        async with unit_of_work(self._sessionmaker) as session:
            await Repositories(session).tasks.renew_leases(self.node, self._lease_until(now))
        self._renewed_at = now

    async def _sweep(self) -> None:
        """Every `sweep_seconds`, make due any running task that waits on nothing."""
        now = utc_now()
        if self._swept_at is not None and now - self._swept_at < timedelta(
            seconds=self._settings.sweep_seconds
        ):
            return
        self._swept_at = now
        async with unit_of_work(self._sessionmaker) as session:
            stalled = await Repositories(session).tasks.mark_stalled_due(now, 100)
        for task_id in stalled:
            log.warning("a running task waited on nothing; advancing it", task_id=str(task_id))

    async def _adopt_forever(self) -> None:
        """At start and every `sweep_seconds`, adopt running tasks whose lease expired."""
        while True:
            try:
                await self.adopt_orphans()
            except Exception as error:  # noqa: BLE001 - retried on the next sweep
                log.warning("adopting orphaned tasks failed; retrying", error=str(error))
            await asyncio.sleep(self._settings.sweep_seconds)

    async def adopt_orphans(self) -> None:
        async with unit_of_work(self._sessionmaker) as session:
            orphans = await Repositories(session).tasks.expired_lease_ids(
                utc_now(), ADOPTIONS_PER_SWEEP
            )
        for task_id in orphans:
            try:
                await self._adopt(task_id)
            except TargetsUnavailable as error:
                log.warning("cannot adopt a task yet", task_id=str(task_id), error=str(error))

    async def _adopt(self, task_id: uuid.UUID) -> None:
        async with unit_of_work(self._sessionmaker) as session:
            now = utc_now()
            await adopt_task(
                Repositories(session),
                task_id,
                self._scripts,
                node=self.node,
                now=now,
                lease_until=self._lease_until(now),
                patience=timedelta(seconds=self._settings.lost_dispatch_seconds),
            )

    async def _settle_unstarted(self) -> None:
        """Retry or fail the runs whose verdict may mean the script never started."""
        async with unit_of_work(self._sessionmaker) as session:
            held = await Repositories(session).step_runs.held_unstarted(100)
        for run_id, space_id, ticket in held:
            try:
                known = await self._scripts.script_run(space_id, ticket)
            except TargetsUnavailable as error:
                log.warning("cannot ask whether a step started", ticket=ticket, error=str(error))
                continue
            async with unit_of_work(self._sessionmaker) as session:
                await settle_unstarted(Repositories(session), run_id, known, now=utc_now())

    async def _apply_overdue_verdicts(self) -> None:
        before = utc_now() - timedelta(seconds=self._settings.log_catch_up_seconds)
        async with unit_of_work(self._sessionmaker) as session:
            overdue = await Repositories(session).step_runs.overdue_reports(before, 100)
        for run_id in overdue:
            async with unit_of_work(self._sessionmaker) as session:
                await apply_overdue_verdict(Repositories(session), run_id, now=utc_now())

    async def _advance(self, task_id: uuid.UUID) -> None:
        limits = Limits(
            max_parallel_steps=self._settings.max_parallel_steps,
            max_parallel_targets=self._settings.max_parallel_targets,
        )
        try:
            async with unit_of_work(self._sessionmaker) as session:
                await advance_task(
                    Repositories(session),
                    task_id,
                    self._directory,
                    now=utc_now(),
                    retry_seconds=self._settings.step_start_retry_seconds,
                    limits=limits,
                    scripts=self._scripts,
                    packages=self._packages,
                    grace_seconds=self._settings.cancel_grace_seconds,
                    step_timeout_seconds=self._settings.step_timeout_seconds,
                )
        except Exception:  # one task's trouble must not stop the others
            log.exception("advancing a task failed; will retry", task_id=str(task_id))
