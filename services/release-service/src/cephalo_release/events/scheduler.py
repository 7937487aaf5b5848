"""Scheduled deployments and scheduled triggers: run when their time comes (any replica may
do it; rows are claimed with SKIP LOCKED)."""

from __future__ import annotations

import asyncio

from cephalo_common.http.app import Runtime
from cephalo_common.ids import utc_now
from cephalo_common.logging import get_logger
from cephalo_release.db.repositories import Repositories
from cephalo_release.deps import PACKAGE_FEED_EXTRA
from cephalo_release.domain.deployments import dispatch_due
from cephalo_release.domain.scheduled_triggers import run_due_triggers

log = get_logger(__name__)


async def run_once(runtime: Runtime) -> int:
    async with runtime.sessionmaker() as session, session.begin():
        dispatched = await dispatch_due(Repositories(session), utc_now())
    async with runtime.sessionmaker() as session, session.begin():
        source = runtime.extras.get(PACKAGE_FEED_EXTRA)
        return dispatched + await run_due_triggers(Repositories(session), utc_now(), source)


async def run_forever(runtime: Runtime, poll_seconds: float) -> None:
    while True:
        try:
            await run_once(runtime)
        except Exception as error:  # noqa: BLE001 - the scheduler must outlive an outage
            log.warning("scheduled deployments could not be dispatched", error=str(error))
        await asyncio.sleep(poll_seconds)


async def start_scheduler(runtime: Runtime) -> None:
    if not runtime.settings.run_workers:
        return
    poll = float(getattr(runtime.settings, "scheduler_poll_seconds", 5.0))
    runtime.tasks.append(asyncio.create_task(run_forever(runtime, poll), name="scheduler"))
