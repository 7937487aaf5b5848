"""Prometheus: tasks by state, read from the database so every instance reports the truth."""

from __future__ import annotations

import asyncio
import contextlib

from prometheus_client import Gauge

from cephalo_common.http.app import Runtime
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain.task_states import TaskState


async def refresh_tasks_gauge(runtime: Runtime, gauge: Gauge, every_seconds: float) -> None:
    while True:
        with contextlib.suppress(Exception):
            async with runtime.sessionmaker() as session:
                counts = await Repositories(session).tasks.count_by_state()
            for state in TaskState:
                gauge.labels(state=state.value).set(counts.get(state.value, 0))
        await asyncio.sleep(every_seconds)


def tasks_gauge(runtime: Runtime) -> Gauge:
    return Gauge(
        "cephalo_orchestrator_tasks",
        "Server tasks by state (all instances; aggregate with max, not sum).",
        ["state"],
        registry=runtime.registry,
    )
