"""The ScriptRunSupervisor: one asyncio task per unfinished script run, resumed after restarts.

It is woken when a dispatch is recorded and rescans the table every `run_scan_seconds` as a
safety net, so a run whose driver died (Postgres blip) or that was left by a crashed process
is picked up again. One process drives a ticket at most once at a time.
"""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_agent_gateway.domain.script_runs import ScriptRunDriver
from cephalo_common.logging import get_logger

log = get_logger(__name__)
MAX_SCAN_BACKOFF_SECONDS = 30.0


class ScriptRunSupervisor:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        driver: ScriptRunDriver,
        *,
        scan_seconds: float,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._driver = driver
        self._scan_seconds = scan_seconds
        self._drivers: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._stopped = False

    @property
    def driving(self) -> frozenset[str]:
        return frozenset(self._drivers)

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Scan, drive, wait for a wake-up or the next scan; until cancelled."""
        delay = self._scan_seconds
        try:
            while True:
                self._wake.clear()
                try:
                    await self.scan()
                    delay = self._scan_seconds
                except Exception as error:  # noqa: BLE001 - Postgres may be down; retry
                    log.warning("script run scan failed; retrying", error=str(error))
                    delay = min(delay * 2, MAX_SCAN_BACKOFF_SECONDS)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
        finally:
            await self.stop()

    async def scan(self) -> None:
        async with self._sessionmaker() as session:
            tickets = await Repositories(session).script_runs.unfinished_tickets()
        for ticket in tickets:
            if ticket not in self._drivers and not self._stopped:
                self._start(ticket)

    async def stop(self) -> None:
        """Cancel every driver; their runs stay unfinished in the table and resume later."""
        self._stopped = True
        tasks = list(self._drivers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._drivers.clear()

    def _start(self, ticket: str) -> None:
        task = asyncio.create_task(self._driver.drive(ticket), name=f"script-run-{ticket}")
        self._drivers[ticket] = task
        task.add_done_callback(lambda done: self._ended(ticket, done))

    def _ended(self, ticket: str, task: asyncio.Task[None]) -> None:
        if self._drivers.get(ticket) is task:
            del self._drivers[ticket]
        if not task.cancelled() and task.exception() is not None:
            log.warning(
                "script run driver failed; the next scan resumes it",
                ticket=ticket,
                error=repr(task.exception()),
            )
