"""Adopting a running task whose owner stopped renewing its lease (crash safety).

Every in-flight run is looked up at agent-gateway and handled as `reconciler.decide` says;
the task changes owner only once none of its runs is still in doubt, so a run whose
dispatch may yet arrive is asked about again on the next sweep. The whole adoption is one
transaction, under the task's row lock.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from cephalo_common.contracts import StepFinishedV1
from cephalo_common.logging import get_logger
from cephalo_orchestrator.db.models import ServerTask, StepRun
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain import task_log
from cephalo_orchestrator.domain.reconciler import (
    Action,
    Decision,
    GatewayRun,
    InFlightRun,
    decide,
    settled,
)
from cephalo_orchestrator.domain.steps import fail_undispatched, record_step_finished
from cephalo_orchestrator.domain.targets import ScriptRuns

log = get_logger(__name__)


async def adopt_task(
    repos: Repositories,
    task_id: uuid.UUID,
    scripts: ScriptRuns,
    *,
    node: str,
    now: datetime,
    lease_until: datetime,
    patience: timedelta,
) -> bool:
    """True when this node now holds the task. `TargetsUnavailable` (agent-gateway cannot be
    asked) leaves it for the next sweep; the caller rolls back."""
    task = await repos.tasks.lock_expired(task_id, now)
    if task is None:
        return False
    runs = list(await repos.step_runs.in_flight(task.id))
    unsent = await repos.outbox.unsent_dispatches([run.ticket for run in runs])
    known = await asyncio.gather(*(scripts.script_run(task.space_id, run.ticket) for run in runs))
    decisions = [
        decide(_in_flight(run, run.ticket not in unsent), found, now=now, patience=patience)
        for run, found in zip(runs, known, strict=True)
    ]
    if not settled(decisions):
        return False
    await _apply(repos, task, runs, known, decisions, now=now)
    previous = task.server_node
    task.server_node = node
    task.lease_expires_at = lease_until
    if previous != node:
        text = f"{node} took over this task: the lease of {previous or 'no instance'} expired"
        await task_log.write(repos, task, text, now=now)
        log.info("adopted a task", task_id=str(task.id), previous=previous, runs=len(runs))
    await repos.session.flush()
    return True


def _in_flight(run: StepRun, sent: bool) -> InFlightRun:
    return InFlightRun(
        run_id=run.id,
        ticket=run.ticket,
        step_name=run.step_name,
        machine_name=run.machine_name,
        dispatched_at=run.created_at,
        dispatch_sent=sent,
    )


async def _apply(
    repos: Repositories,
    task: ServerTask,
    runs: Sequence[StepRun],
    known: Sequence[GatewayRun | None],
    decisions: Sequence[Decision],
    *,
    now: datetime,
) -> None:
    for run, found, decision in zip(runs, known, decisions, strict=True):
        if decision.action is Action.TAKE_RESULT and found is not None:
            await record_step_finished(repos, _verdict(task, run, found), now=now)
        elif decision.action is Action.FAIL_LOST:
            await fail_undispatched(repos, task, run, decision.reason or "", now=now)


def _verdict(task: ServerTask, run: StepRun, found: GatewayRun) -> StepFinishedV1:
    """The gateway's record of a finished run, as the step.finished that never came."""
    return StepFinishedV1(
        ticket=run.ticket,
        task_id=str(task.id),
        step_run_id=str(run.id),
        machine_id=str(run.machine_id),
        exit_code=found.exit_code,
        error=found.error,
        last_log_sequence=found.last_log_sequence or None,
    )
