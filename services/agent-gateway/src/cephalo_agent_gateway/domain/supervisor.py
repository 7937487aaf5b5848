"""The ScriptRunSupervisor: one asyncio task per script run this replica holds.

Replicas share the runs through leases in the table: a scan claims unfinished runs that
nobody holds (or whose holder stopped renewing), a heartbeat picks up cancellations every
`heartbeat_seconds` and renews this replica's leases every third of `lease_seconds`, and a
clean stop gives the leases back. A scan touches only the rows it claims (the first scan,
and the one after a driver failed, also take back this replica's own): rewriting every held
run on each dispatch would lock the rows the drivers are updating. So a run is driven by one replica at a time, a dead replica's runs move to another
after `lease_seconds`, and any replica can drive a run for any agent (the transport routes
the calls to the replica that holds the agent's connection).

It is woken when a dispatch or a cancellation is recorded here (and waits `gather_seconds`
for the rest of a burst, so a thousand dispatches cost a few claims, not a thousand), and
rescans every `run_scan_seconds` as a safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_agent_gateway.domain.script_runs import ScriptRunDriver
from cephalo_common.db.session import unit_of_work
from cephalo_common.logging import get_logger

log = get_logger(__name__)
MAX_SCAN_BACKOFF_SECONDS = 30.0


@dataclass(frozen=True)
class SupervisorSettings:
    replica: str
    scan_seconds: float
    gather_seconds: float = 0.0
    lease_seconds: float = 30.0
    heartbeat_seconds: float = 2.0
    claim_batch: int = 500


class ScriptRunSupervisor:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        driver: ScriptRunDriver,
        settings: SupervisorSettings,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._driver = driver
        self._settings = settings
        self._drivers: dict[str, asyncio.Task[None]] = {}
        self._cancels: dict[str, asyncio.Event] = {}
        self._wake = asyncio.Event()
        self._stopped = False
        self._adopt_own = True
        self._renewed_at = -math.inf

    @property
    def driving(self) -> frozenset[str]:
        return frozenset(self._drivers)

    def wake(self) -> None:
        self._wake.set()

    def cancel(self, ticket: str) -> bool:
        """Cancel a run driven here at once; False if another replica drives it."""
        event = self._cancels.get(ticket)
        if event is None:
            return False
        event.set()
        return True

    async def run(self) -> None:
        """Scan, drive, heartbeat; until cancelled (then give the leases back)."""
        heartbeat = asyncio.create_task(self._heartbeat(), name="script-run-heartbeat")
        delay = self._settings.scan_seconds
        try:
            while True:
                self._wake.clear()
                try:
                    await self.scan()
                    delay = self._settings.scan_seconds
                except Exception as error:  # noqa: BLE001 - Postgres may be down; retry
                    log.warning("script run scan failed; retrying", error=str(error))
                    delay = min(delay * 2, MAX_SCAN_BACKOFF_SECONDS)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                if self._wake.is_set() and self._settings.gather_seconds:
                    await asyncio.sleep(self._settings.gather_seconds)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await self.stop()

    async def scan(self) -> None:
        """Claim what nobody drives and start a driver for each."""
        if self._stopped:
            return
        s = self._settings
        adopt_own, self._adopt_own = self._adopt_own, False
        try:
            async with unit_of_work(self._sessionmaker) as session:
                tickets = await Repositories(session).script_runs.claim(
                    s.replica,
                    lease_seconds=s.lease_seconds,
                    limit=s.claim_batch,
                    adopt_own=adopt_own,
                )
        except BaseException:
            self._adopt_own = self._adopt_own or adopt_own
            raise
        for ticket in tickets:
            if ticket not in self._drivers and not self._stopped:
                self._start(ticket)

    async def stop(self) -> None:
        """Cancel every driver and release their leases; the runs resume elsewhere or later."""
        self._stopped = True
        tasks = list(self._drivers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._drivers.clear()
        try:
            async with unit_of_work(self._sessionmaker) as session:
                await Repositories(session).script_runs.release(self._settings.replica)
        except Exception as error:  # noqa: BLE001 - the leases then simply expire
            log.warning("could not release script run leases", error=str(error))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._settings.heartbeat_seconds)
            try:
                await self.renew()
            except Exception as error:  # noqa: BLE001 - retried at the next beat
                log.warning("could not renew script run leases", error=str(error))

    async def renew(self, *, force: bool = False) -> None:
        """Renew this replica's leases when a third of their time has passed (or `force`);
        stop drivers whose lease was lost; pass on cancels."""
        tickets = list(self._drivers)
        if not tickets:
            return
        s = self._settings
        now = asyncio.get_running_loop().time()
        renewing = force or now - self._renewed_at >= s.lease_seconds / 3
        async with unit_of_work(self._sessionmaker) as session:
            repos = Repositories(session)
            if renewing:
                held = set(
                    await repos.script_runs.renew(s.replica, tickets, lease_seconds=s.lease_seconds)
                )
                self._renewed_at = now
            else:
                held = set(tickets)
            cancelled = await repos.script_runs.cancel_requested(list(held))
        for ticket in tickets:
            if ticket not in held and ticket in self._drivers:
                log.warning(
                    "lost the lease of a script run; another replica drives it", ticket=ticket
                )
                self._drivers[ticket].cancel()
        for ticket in cancelled:
            self.cancel(ticket)

    def _start(self, ticket: str) -> None:
        cancel = self._cancels[ticket] = asyncio.Event()
        task = asyncio.create_task(self._driver.drive(ticket, cancel), name=f"script-run-{ticket}")
        self._drivers[ticket] = task
        task.add_done_callback(lambda done: self._ended(ticket, done))

    def _ended(self, ticket: str, task: asyncio.Task[None]) -> None:
        if self._drivers.get(ticket) is task:
            del self._drivers[ticket]
            self._cancels.pop(ticket, None)
        if not task.cancelled() and task.exception() is not None:
            self._adopt_own = True
            log.warning(
                "script run driver failed; the next scan resumes it",
                ticket=ticket,
                error=repr(task.exception()),
            )
