"""Script isolation: named mutexes, so one deployment step at a time runs on a target.

A `FullIsolation` script holds its mutex (by default `RunningScript`) from just before its
process starts until its ticket completes; `NoIsolation` scripts (health checks, workers)
never wait. Waiters are served first come, first served, and ownership passes directly to
the next waiter, so a timeout racing a hand-over can never leave the mutex held by nobody.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import Any


class NamedMutexes:
    """In-memory, per agent process: a restart re-takes the mutexes of adopted scripts."""

    def __init__(self) -> None:
        self._holders: dict[str, str] = {}
        self._waiters: dict[str, deque[tuple[str, asyncio.Future[None]]]] = {}

    def holder(self, name: str) -> str | None:
        return self._holders.get(name)

    def take(self, name: str, ticket: str) -> bool:
        """Take the mutex at once if it is free (used for scripts adopted after a restart)."""
        if name in self._holders or self._waiters.get(name):
            return self._holders.get(name) == ticket
        self._holders[name] = ticket
        return True

    async def acquire(
        self, name: str, ticket: str, timeout: float | None, abort: asyncio.Event
    ) -> bool:
        """Wait for the mutex; False if `timeout` passed or `abort` was set first."""
        if self.take(name, ticket):
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (ticket, future)
        queue = self._waiters.setdefault(name, deque())
        queue.append(entry)
        aborted = asyncio.create_task(abort.wait())
        try:
            waits: set[asyncio.Future[Any]] = {future, aborted}
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            aborted.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await aborted
            if not future.done():
                with contextlib.suppress(ValueError):
                    queue.remove(entry)
                if not queue:
                    self._waiters.pop(name, None)
        return future.done()

    def release(self, name: str, ticket: str) -> None:
        """Hand the mutex to the next waiter, or free it; a non-holder's release is ignored."""
        if self._holders.get(name) != ticket:
            return
        queue = self._waiters.get(name)
        while queue:
            next_ticket, future = queue.popleft()
            if not future.done():
                self._holders[name] = next_ticket
                future.set_result(None)
                if not queue:
                    self._waiters.pop(name, None)
                return
        self._waiters.pop(name, None)
        del self._holders[name]
