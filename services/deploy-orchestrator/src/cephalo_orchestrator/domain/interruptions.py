"""Interruptions: the questions a task waits on while Paused.

Guided failure (when the deployment asks for it) turns a failed run into a question: Fail,
Retry (run that action on that machine again), Ignore (carry on as if it succeeded) or
Exclude machine (carry on without that machine for the rest of the deployment); Ignore and
Exclude are not offered for a required step. A manual intervention step asks Proceed or
Abort, with instructions. A person takes responsibility, then submits a choice with notes;
every submission is written to the task log and the service log (the audit trail), and the
task resumes once no question is left.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_common.logging import get_logger
from cephalo_orchestrator.db.models import Interruption, ServerTask, StepRun
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain import task_log
from cephalo_orchestrator.domain.step_run_states import StepRunState
from cephalo_orchestrator.domain.task_states import TaskState, ensure_transition
from cephalo_orchestrator.events import publish

log = get_logger(__name__)


class InterruptionKind(StrEnum):
    GUIDED_FAILURE = "GuidedFailure"
    MANUAL_INTERVENTION = "ManualIntervention"


class Choice(StrEnum):
    FAIL = "Fail"
    RETRY = "Retry"
    IGNORE = "Ignore"
    EXCLUDE = "Exclude"
    PROCEED = "Proceed"
    ABORT = "Abort"


class Override(StrEnum):
    """What a decision did to a run (`StepRun.outcome_override`)."""

    AWAITING = "AwaitingDecision"
    RETRIED = "Retried"
    IGNORED = "Ignored"
    EXCLUDED = "Excluded"
    CANCEL_REQUESTED = "CancelRequested"


def guided_failure_choices(is_required: bool) -> list[str]:
    if is_required:
        return [Choice.FAIL.value, Choice.RETRY.value]
    return [Choice.FAIL.value, Choice.RETRY.value, Choice.IGNORE.value, Choice.EXCLUDE.value]


async def raise_guided_failure(
    repos: Repositories, task: ServerTask, run: StepRun, *, is_required: bool, now: datetime
) -> Interruption:
    """The run failed and the deployment uses guided failure: ask, and pause the task."""
    run.outcome_override = Override.AWAITING.value
    exit_code = "no exit code" if run.exit_code is None else f"exit code {run.exit_code}"
    interruption = await _add(
        repos,
        task,
        run,
        kind=InterruptionKind.GUIDED_FAILURE,
        title=f'"{run.step_name}" failed on {run.machine_name} ({exit_code})',
        choices=guided_failure_choices(is_required),
    )
    await pause(repos, task, f"waiting for a decision: {interruption.title}", now=now)
    return interruption


async def raise_manual_intervention(
    repos: Repositories,
    task: ServerTask,
    run: StepRun,
    properties: dict[str, Any],
    *,
    now: datetime,
) -> Interruption:
    run.state = StepRunState.RUNNING.value
    run.started_at = now
    teams = properties.get("responsible_team_ids") or []
    interruption = await _add(
        repos,
        task,
        run,
        kind=InterruptionKind.MANUAL_INTERVENTION,
        title=f'Manual intervention: "{run.step_name}"',
        choices=[Choice.PROCEED.value, Choice.ABORT.value],
        instructions=str(properties.get("instructions") or ""),
        teams=[str(team) for team in teams],
    )
    await pause(repos, task, f"waiting for a manual intervention: {run.step_name}", now=now)
    return interruption


async def _add(
    repos: Repositories,
    task: ServerTask,
    run: StepRun,
    *,
    kind: InterruptionKind,
    title: str,
    choices: list[str],
    instructions: str | None = None,
    teams: Sequence[str] = (),
) -> Interruption:
    interruption = Interruption(
        space_id=task.space_id,
        task_id=task.id,
        step_run_id=run.id,
        kind=kind.value,
        title=title,
        instructions=instructions,
        responsible_team_ids=list(teams),
        choices=choices,
        is_pending=True,
    )
    repos.session.add(interruption)
    await repos.session.flush()
    return interruption


async def pause(repos: Repositories, task: ServerTask, reason: str, *, now: datetime) -> None:
    """Executing → Paused, with the question as the reason (already Paused: nothing)."""
    await task_log.write(repos, task, reason[0].upper() + reason[1:], now=now)
    if task.state != TaskState.EXECUTING:
        return
    task.state = ensure_transition(TaskState(task.state), TaskState.PAUSED).value
    task.reason = reason
    await repos.session.flush()
    publish.task_state_changed(repos.session, task)


async def get_interruption(
    repos: Repositories, space_id: uuid.UUID, task_id: uuid.UUID, interruption_id: uuid.UUID
) -> Interruption:
    found = await repos.interruptions.find_in_task(space_id, task_id, interruption_id)
    if found is None:
        raise NotFound(f"interruption {interruption_id} was not found in this task")
    return found


async def take_responsibility(
    repos: Repositories,
    space_id: uuid.UUID,
    task_id: uuid.UUID,
    interruption_id: uuid.UUID,
    *,
    user: str,
    now: datetime,
) -> Interruption:
    task = await _locked_task(repos, space_id, task_id)
    interruption = await _pending(repos, space_id, task.id, interruption_id)
    if interruption.responsible_user != user:
        interruption.responsible_user = user
        await task_log.write(
            repos, task, f'{user} took responsibility for "{interruption.title}"', now=now
        )
        log.info("interruption responsibility taken", interruption=str(interruption.id), user=user)
    await repos.session.flush()
    return interruption


async def submit(
    repos: Repositories,
    space_id: uuid.UUID,
    task_id: uuid.UUID,
    interruption_id: uuid.UUID,
    *,
    user: str,
    choice: Choice,
    notes: str | None,
    now: datetime,
) -> Interruption:
    """Apply a person's decision; the task resumes once no question is left open."""
    task = await _locked_task(repos, space_id, task_id)
    interruption = await _pending(repos, space_id, task.id, interruption_id)
    if choice.value not in interruption.choices:
        offered = ", ".join(interruption.choices)
        raise Invalid(f"{choice.value} is not offered here; choose one of: {offered}")
    if interruption.responsible_user not in (None, user):
        raise Conflict(
            f"{interruption.responsible_user} is responsible for this interruption; "
            "take responsibility first"
        )
    run = await repos.step_runs.lock(interruption.step_run_id) if interruption.step_run_id else None
    if run is not None:
        _apply_choice(run, choice, user, notes, now=now)
    interruption.responsible_user = user
    interruption.is_pending = False
    interruption.result = choice.value
    interruption.notes = notes
    interruption.submitted_by = user
    interruption.submitted_at = now
    text = f'{user} chose {choice.value} for "{interruption.title}"'
    await task_log.write(repos, task, f"{text}: {notes}" if notes else text, now=now)
    log.info(
        "interruption submitted",
        interruption=str(interruption.id),
        task=str(task.id),
        user=user,
        result=choice.value,
    )
    await _resume_if_answered(repos, task, now=now)
    return interruption


def _apply_choice(
    run: StepRun, choice: Choice, user: str, notes: str | None, *, now: datetime
) -> None:
    overrides = {
        Choice.RETRY: Override.RETRIED.value,
        Choice.IGNORE: Override.IGNORED.value,
        Choice.EXCLUDE: Override.EXCLUDED.value,
        Choice.FAIL: None,
    }
    if choice in overrides:
        run.outcome_override = overrides[choice]
        return
    run.finished_at = now
    if choice is Choice.PROCEED:
        run.state = StepRunState.SUCCESS.value
        return
    run.state = StepRunState.FAILED.value
    run.error = f"aborted by {user}" + (f": {notes}" if notes else "")


async def _resume_if_answered(repos: Repositories, task: ServerTask, *, now: datetime) -> None:
    await repos.session.flush()
    if await repos.interruptions.count_pending(task.id) or task.state != TaskState.PAUSED:
        return
    task.state = ensure_transition(TaskState(task.state), TaskState.EXECUTING).value
    task.reason = None
    task.step_due_at = now
    await repos.session.flush()
    publish.task_state_changed(repos.session, task)


async def close_pending(
    repos: Repositories, task: ServerTask, *, result: str, now: datetime
) -> None:
    """A cancelled task's open questions are closed unanswered."""
    for interruption in await repos.interruptions.pending_for_task(task.id):
        interruption.is_pending = False
        interruption.result = result
        interruption.submitted_at = now
    await repos.session.flush()


async def _locked_task(repos: Repositories, space_id: uuid.UUID, task_id: uuid.UUID) -> ServerTask:
    task = await repos.tasks.find_in_space(space_id, task_id)
    if task is None:
        raise NotFound(f"task {task_id} was not found in this space")
    locked = await repos.tasks.lock(task.id)
    assert locked is not None
    return locked


async def _pending(
    repos: Repositories, space_id: uuid.UUID, task_id: uuid.UUID, interruption_id: uuid.UUID
) -> Interruption:
    interruption = await get_interruption(repos, space_id, task_id, interruption_id)
    if not interruption.is_pending:
        raise Conflict(
            f"this interruption was already answered ({interruption.result} by "
            f"{interruption.submitted_by or 'the server'})"
        )
    return interruption
