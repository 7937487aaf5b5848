"""Step runs: the agents' log lines and verdicts. A verdict is applied only once the run's
log has caught up to the `last_log_sequence` it announces (log batches and the verdict
travel on separate consumers); the runner then advances the task (`execution`)."""

from __future__ import annotations

import uuid
from datetime import datetime

from cephalo_common.contracts import DeploymentOptionsV1, StepFinishedV1, StepLogV1
from cephalo_common.errors import Invalid
from cephalo_common.logging import get_logger
from cephalo_orchestrator.db.models import ServerTask, StepRun
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain import plan, task_log
from cephalo_orchestrator.domain.artifacts import record_artifacts
from cephalo_orchestrator.domain.interruptions import Override, raise_guided_failure
from cephalo_orchestrator.domain.planning import DeploymentPlan
from cephalo_orchestrator.domain.reconciler import GatewayRun
from cephalo_orchestrator.domain.retries import may_be_unstarted, never_started, retry_line
from cephalo_orchestrator.domain.step_run_states import (
    FAILED_RUN_STATES,
    TERMINAL_RUN_STATES,
    StepRunState,
    can_transition,
    outcome,
)
from cephalo_orchestrator.domain.task_log import LogSource
from cephalo_orchestrator.domain.task_states import TaskState

log = get_logger(__name__)


async def _locked_run(repos: Repositories, step_run_id: str) -> tuple[ServerTask, StepRun] | None:
    """The run and its task, task locked first (the one lock order every writer uses)."""
    try:
        run_id = uuid.UUID(step_run_id)
    except ValueError as error:
        raise Invalid(f"step_run_id {step_run_id!r} is not a UUID") from error
    found = await repos.step_runs.find(run_id)
    if found is None:
        log.warning("message for an unknown step run ignored", step_run_id=step_run_id)
        return None
    task = await repos.tasks.lock(found.task_id)
    run = await repos.step_runs.lock(run_id)
    if task is None or run is None:
        return None
    return task, run


async def record_step_log(repos: Repositories, message: StepLogV1, *, now: datetime) -> bool:
    """Append the agent's lines once each; the first lines mark the run Running. True when
    the lines complete a log a held-back verdict was waiting for (the verdict is applied)."""
    found = await _locked_run(repos, message.step_run_id)
    if found is None:
        return False
    task, run = found
    if run.ticket != message.ticket:
        log.warning("step log with a stale ticket ignored", step_run_id=str(run.id))
        return False
    await task_log.append_agent_output(repos, run, message.lines, now=now)
    if message.lines:
        run.log_sequence = max(run.log_sequence, *(line.sequence for line in message.lines))
    if can_transition(StepRunState(run.state), StepRunState.RUNNING):
        run.state = StepRunState.RUNNING.value
        run.started_at = now
    await repos.session.flush()
    if run.reported is not None and _caught_up(run, run.reported.get("last_log_sequence")):
        verdict = StepFinishedV1.model_validate(run.reported)
        return await _apply_verdict(repos, task, run, verdict, now=now)
    return False


def _caught_up(run: StepRun, last_log_sequence: int | None) -> bool:
    return last_log_sequence is None or run.log_sequence >= last_log_sequence


async def record_step_finished(
    repos: Repositories, message: StepFinishedV1, *, now: datetime
) -> bool:
    """Apply one machine's verdict once its log has caught up; until then hold it on the run.
    True when the task should be advanced."""
    found = await _locked_run(repos, message.step_run_id)
    if found is None:
        return False
    task, run = found
    if run.ticket != message.ticket or StepRunState(run.state) in TERMINAL_RUN_STATES:
        return False
    unstarted = may_be_unstarted(
        message, run_state=run.state, attempt=run.attempt, task_state=task.state
    )
    if unstarted or not _caught_up(run, message.last_log_sequence):
        if run.reported is None:
            run.reported = message.model_dump(mode="json")
            run.reported_at = now
            await repos.session.flush()
        return False
    return await _apply_verdict(repos, task, run, message, now=now)


async def settle_unstarted(
    repos: Repositories, run_id: uuid.UUID, known: GatewayRun | None, *, now: datetime
) -> bool:
    """A held verdict of a run that may never have started (`retries`): dispatch it again
    when the gateway confirms it never started, else apply the verdict as it is."""
    found = await _locked_run(repos, str(run_id))
    if found is None:
        return False
    task, run = found
    if run.reported is None or StepRunState(run.state) in TERMINAL_RUN_STATES:
        return False
    verdict = StepFinishedV1.model_validate(run.reported)
    if not never_started(known) or task.state != TaskState.EXECUTING:
        return await _apply_verdict(repos, task, run, verdict, now=now)
    text = retry_line(run.step_name, run.machine_name, run.attempt, verdict.error)
    await task_log.write(repos, task, text, now=now, source=LogSource.ERROR, run=run)
    run.state = StepRunState.FAILED.value
    run.error = verdict.error
    run.finished_at = now
    run.reported = None
    run.outcome_override = Override.RETRIED
    task.step_due_at = now
    await repos.session.flush()
    return True


async def apply_overdue_verdict(repos: Repositories, run_id: uuid.UUID, *, now: datetime) -> bool:
    """A held-back verdict whose log never caught up: apply it, saying which lines are missing."""
    found = await _locked_run(repos, str(run_id))
    if found is None:
        return False
    task, run = found
    if run.reported is None or StepRunState(run.state) in TERMINAL_RUN_STATES:
        return False
    verdict = StepFinishedV1.model_validate(run.reported)
    text = (
        f"The log of {run.step_name} on {run.machine_name} is incomplete: lines up to "
        f"{verdict.last_log_sequence} were announced, {run.log_sequence} arrived"
    )
    await task_log.write(repos, task, text, now=now, source=LogSource.ERROR, run=run)
    return await _apply_verdict(repos, task, run, verdict, now=now)


async def fail_undispatched(
    repos: Repositories, task: ServerTask, run: StepRun, reason: str, *, now: datetime
) -> bool:
    """A run that could not be sent (its package is missing) fails as if its target had
    reported the reason, guided failure included."""
    verdict = StepFinishedV1(
        ticket=run.ticket,
        task_id=str(task.id),
        step_run_id=str(run.id),
        machine_id=str(run.machine_id),
        exit_code=None,
        error=reason,
    )
    return await _apply_verdict(repos, task, run, verdict, now=now)


async def _apply_verdict(
    repos: Repositories, task: ServerTask, run: StepRun, message: StepFinishedV1, *, now: datetime
) -> bool:
    run.state = outcome(message.exit_code).value
    if task.state == TaskState.CANCELLING and run.state in FAILED_RUN_STATES:
        run.state = StepRunState.CANCELED.value
    run.exit_code = message.exit_code
    run.error = message.error
    run.finished_at = now
    run.started_at = run.started_at or now
    run.reported = None
    run.output_variables = dict(message.output_variables)
    run.sensitive_outputs = list(message.sensitive_output_variables)
    await record_artifacts(repos, run, message.artifacts)
    line = plan.finished_line(run.step_name, run.machine_name, message.exit_code, message.error)
    source = LogSource.INFO if run.state == StepRunState.SUCCESS else LogSource.ERROR
    await task_log.write(repos, task, line, now=now, source=source, run=run)
    if run.state in FAILED_RUN_STATES and _guided(task):
        await raise_guided_failure(repos, task, run, is_required=_required(task, run), now=now)
    if task.state not in (TaskState.EXECUTING, TaskState.CANCELLING):
        await repos.session.flush()
        return False
    task.step_due_at = now
    await repos.session.flush()
    return True


def _guided(task: ServerTask) -> bool:
    """Guided failure applies while the task runs or waits, never while it is cancelled."""
    options = DeploymentOptionsV1.model_validate(task.options or {})
    return options.use_guided_failure and task.state in (TaskState.EXECUTING, TaskState.PAUSED)


def _required(task: ServerTask, run: StepRun) -> bool:
    if task.plan is None:
        return False
    step, _ = DeploymentPlan.from_json(task.plan).action(run.step_index)
    return step.is_required
