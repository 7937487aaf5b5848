"""Cancelling a task: ask agent-gateway to stop every running step, then end the task
Canceled once they have stopped, or abandon them after the grace period (their machines are
then free for the next deployment). The reason says which of the two happened."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from cephalo_common.errors import Conflict, NotFound
from cephalo_orchestrator.db.models import ServerTask, StepRun
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain import task_log
from cephalo_orchestrator.domain.interruptions import Override, close_pending
from cephalo_orchestrator.domain.step_run_states import ACTIVE_RUN_STATES, StepRunState
from cephalo_orchestrator.domain.targets import ScriptRuns, TargetsUnavailable
from cephalo_orchestrator.domain.task_log import LogSource
from cephalo_orchestrator.domain.task_states import TaskState, ensure_transition, is_completed
from cephalo_orchestrator.domain.tasks import finish_task
from cephalo_orchestrator.events import publish

RECHECK_SECONDS = 1.0


async def request_cancel(
    repos: Repositories, space_id: uuid.UUID, task_id: uuid.UUID, *, user: str, now: datetime
) -> ServerTask:
    """Queued → Canceled at once; Executing/Paused → Cancelling; again → no change."""
    found = await repos.tasks.find_in_space(space_id, task_id)
    if found is None:
        raise NotFound(f"task {task_id} was not found in this space")
    task = await repos.tasks.lock(found.id)
    assert task is not None
    state = TaskState(task.state)
    if state is TaskState.CANCELLING:
        return task
    if is_completed(state):
        raise Conflict(f"the task has already ended ({state.value})")
    await close_pending(repos, task, result="Canceled", now=now)
    if state is TaskState.QUEUED:
        reason = f"Canceled by {user} before it started"
        await finish_task(repos, task, TaskState.CANCELED, now=now, reason=reason)
        return task
    task.state = ensure_transition(state, TaskState.CANCELLING).value
    task.reason = f"Cancellation requested by {user}"
    task.cancel_requested_at = now
    task.step_due_at = now
    await repos.session.flush()
    await task_log.write(repos, task, f"{task.reason}; stopping the running steps", now=now)
    publish.task_state_changed(repos.session, task)
    return task


async def continue_cancelling(
    repos: Repositories,
    task: ServerTask,
    scripts: ScriptRuns,
    *,
    now: datetime,
    grace_seconds: float,
) -> None:
    """One pass: finish if nothing runs, abandon after the grace period, else ask to stop."""
    runs = await repos.step_runs.for_task(task.id)
    active = [run for run in runs if StepRunState(run.state) in ACTIVE_RUN_STATES]
    requested = task.reason or "Cancellation requested"
    if not active:
        reason = f"{requested}; every running step stopped"
        await finish_task(repos, task, TaskState.CANCELED, now=now, reason=reason)
        return
    deadline = (task.cancel_requested_at or now) + timedelta(seconds=grace_seconds)
    if now >= deadline:
        await _abandon(repos, task, active, now=now, grace_seconds=grace_seconds)
        return
    for run in active:
        await _stop(repos, task, run, scripts, now=now)
    task.step_due_at = min(deadline, now + timedelta(seconds=RECHECK_SECONDS))
    await repos.session.flush()


async def _stop(
    repos: Repositories, task: ServerTask, run: StepRun, scripts: ScriptRuns, *, now: datetime
) -> None:
    if run.machine_id is None:
        run.state = StepRunState.CANCELED.value
        run.finished_at = now
        return
    if run.outcome_override == Override.CANCEL_REQUESTED:
        return
    try:
        await scripts.cancel_script(task.space_id, run.ticket)
    except TargetsUnavailable as error:
        text = f"Could not ask {run.machine_name} to stop {run.step_name}: {error}; retrying"
        await task_log.write(repos, task, text, now=now, source=LogSource.ERROR, run=run)
        return
    run.outcome_override = Override.CANCEL_REQUESTED.value


async def _abandon(
    repos: Repositories,
    task: ServerTask,
    active: list[StepRun],
    *,
    now: datetime,
    grace_seconds: float,
) -> None:
    for run in active:
        run.state = StepRunState.CANCELED.value
        run.error = f"abandoned: it did not stop within the {grace_seconds:g} s grace period"
        run.finished_at = now
        text = f"{run.step_name} on {run.machine_name} was {run.error}"
        await task_log.write(repos, task, text, now=now, source=LogSource.ERROR, run=run)
    names = ", ".join(sorted({run.machine_name for run in active}))
    reason = (
        f"{task.reason or 'Cancellation requested'}; {names} did not stop within the "
        f"{grace_seconds:g} s grace period and {'was' if len(active) == 1 else 'were'} abandoned"
    )
    await finish_task(repos, task, TaskState.CANCELED, now=now, reason=reason)
