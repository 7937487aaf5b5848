"""Steps: start one (a StepRun and a dispatch per machine), take the agents' logs and
verdicts, and advance the task when every machine of the current step is done."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from cephalo_common.contracts import StepFinishedV1, StepLogV1
from cephalo_common.errors import Invalid
from cephalo_common.ids import uuid7
from cephalo_common.logging import get_logger
from cephalo_common.messaging.envelope import Envelope
from cephalo_orchestrator.db.models import ServerTask, StepRun
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain import plan, task_log
from cephalo_orchestrator.domain.plan import InvalidStep, RunFailure, StepPlan
from cephalo_orchestrator.domain.step_run_states import (
    TERMINAL_RUN_STATES,
    StepRunState,
    can_transition,
    outcome,
)
from cephalo_orchestrator.domain.targets import (
    Machine,
    MachineDirectory,
    TargetsRefused,
    TargetsUnavailable,
    eligible,
)
from cephalo_orchestrator.domain.task_log import LogSource
from cephalo_orchestrator.domain.task_states import TaskState
from cephalo_orchestrator.domain.tasks import finish_task
from cephalo_orchestrator.events import publish

log = get_logger(__name__)


async def start_due_step(
    repos: Repositories,
    task_id: uuid.UUID,
    directory: MachineDirectory,
    *,
    now: datetime,
    retry_seconds: float,
) -> None:
    """Find the current step's machines and dispatch it to each; retry or fail otherwise.

    The task row stays locked while agent-gateway answers (bounded by the client's
    timeout), so exactly one instance starts a given step.
    """
    task = await repos.tasks.lock_due_step(task_id, now)
    if task is None:
        return
    try:
        step = plan.step_plan(task.steps, task.current_step)
    except InvalidStep as error:
        await finish_task(repos, task, TaskState.FAILED, now=now, reason=str(error))
        return
    try:
        found = await directory.find_machines(task.space_id, task.environment_id, step.target_roles)
    except TargetsUnavailable as error:
        await _defer(repos, task, step, str(error), now=now, retry_seconds=retry_seconds)
        return
    except TargetsRefused as error:
        await finish_task(repos, task, TaskState.FAILED, now=now, reason=str(error))
        return
    machines = eligible(found)
    if not machines:
        disabled = len({machine.id for machine in found})
        reason = plan.no_targets_reason(task.environment_name, step.target_roles, disabled)
        await finish_task(repos, task, TaskState.FAILED, now=now, reason=reason)
        return
    await _dispatch(repos, task, step, machines, now=now)


async def _dispatch(
    repos: Repositories,
    task: ServerTask,
    step: StepPlan,
    machines: Sequence[Machine],
    *,
    now: datetime,
) -> None:
    task.step_due_at = None
    task.step_start_failures = 0
    task.step_start_failing_since = None
    await task_log.write(repos, task, plan.running_step_line(step, machines), now=now)
    for machine in machines:
        run = await repos.step_runs.add(
            StepRun(
                task_id=task.id,
                step_index=step.index,
                step_name=step.name,
                machine_id=machine.id,
                machine_name=machine.name,
                ticket=str(uuid7()),
                attempt=1,
                state=StepRunState.PENDING.value,
            )
        )
        publish.step_dispatch(
            repos.session, task, run, script_body=step.script_body, syntax=step.syntax
        )


async def _defer(
    repos: Repositories,
    task: ServerTask,
    step: StepPlan,
    error: str,
    *,
    now: datetime,
    retry_seconds: float,
) -> None:
    """Keep the task Executing and ask again later, until the retry budget is spent."""
    since = task.step_start_failing_since or now
    if now - since >= timedelta(seconds=retry_seconds):
        reason = plan.unreachable_reason(step.name, error, retry_seconds)
        await finish_task(repos, task, TaskState.FAILED, now=now, reason=reason)
        return
    if task.step_start_failing_since is None:
        task.step_start_failing_since = now
        await task_log.write(
            repos,
            task,
            f'Could not find the deployment targets for step "{step.name}": {error}; retrying',
            now=now,
            source=LogSource.ERROR,
        )
    task.step_start_failures += 1
    task.step_due_at = now + timedelta(seconds=plan.retry_delay(task.step_start_failures))
    await repos.session.flush()


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


async def record_step_log(repos: Repositories, message: StepLogV1, *, now: datetime) -> None:
    """Append the agent's lines once each; the first lines mark the run Running."""
    found = await _locked_run(repos, message.step_run_id)
    if found is None:
        return
    _, run = found
    if run.ticket != message.ticket:
        log.warning("step log with a stale ticket ignored", step_run_id=str(run.id))
        return
    await task_log.append_agent_output(repos, run, message.lines, now=now)
    if can_transition(StepRunState(run.state), StepRunState.RUNNING):
        run.state = StepRunState.RUNNING.value
        run.started_at = now
    await repos.session.flush()


async def record_step_finished(
    repos: Repositories, message: StepFinishedV1, *, now: datetime, caused_by: Envelope
) -> bool:
    """Apply one machine's verdict; True when the task's next step became due."""
    found = await _locked_run(repos, message.step_run_id)
    if found is None:
        return False
    task, run = found
    if run.ticket != message.ticket or StepRunState(run.state) in TERMINAL_RUN_STATES:
        return False
    run.state = outcome(message.exit_code).value
    run.exit_code = message.exit_code
    run.error = message.error
    run.finished_at = now
    run.started_at = run.started_at or now
    line = plan.finished_line(run.step_name, run.machine_name, message.exit_code, message.error)
    source = LogSource.INFO if run.state == StepRunState.SUCCESS else LogSource.ERROR
    await task_log.write(repos, task, line, now=now, source=source, run=run)
    if task.state != TaskState.EXECUTING or run.step_index != task.current_step:
        return False
    return await _advance(repos, task, now=now, caused_by=caused_by)


async def _advance(
    repos: Repositories, task: ServerTask, *, now: datetime, caused_by: Envelope
) -> bool:
    """When every run of the current step is done: fail, finish, or make the next step due."""
    runs = await repos.step_runs.for_step(task.id, task.current_step)
    if any(StepRunState(run.state) not in TERMINAL_RUN_STATES for run in runs):
        return False
    failures = [
        RunFailure(run.machine_name, run.exit_code)
        for run in runs
        if run.state == StepRunState.FAILED
    ]
    if failures:
        reason = plan.step_failed_reason(runs[0].step_name, failures)
        await finish_task(
            repos, task, TaskState.FAILED, now=now, reason=reason, caused_by=caused_by
        )
        return False
    if plan.is_last_step(task.steps, task.current_step):
        await finish_task(repos, task, TaskState.SUCCESS, now=now, caused_by=caused_by)
        return False
    task.current_step += 1
    task.step_due_at = now
    await repos.session.flush()
    return True
