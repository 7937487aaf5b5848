"""Running a task's plan: plan once, then start whatever the scheduler allows, group by group.

The runner calls `advance_task` whenever a task is due (started, or a run just ended). The
task row stays locked from the first read until the dispatches commit, so exactly one
instance advances a given task at a time. Everything that decides lives in `planning`; this
module reads the state from the database and writes the runs, log lines and dispatches.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Protocol

from cephalo_common.contracts import (
    DeploymentOptionsV1,
    PackageAcquisitionV1,
    ScriptActionSnapshot,
)
from cephalo_common.ids import uuid7
from cephalo_common.variables import OutputVariables, VariableValue
from cephalo_orchestrator.db.models import ServerTask, StepRun
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain import plan as words
from cephalo_orchestrator.domain import task_log
from cephalo_orchestrator.domain.cancellation import continue_cancelling
from cephalo_orchestrator.domain.interruptions import Override, raise_manual_intervention
from cephalo_orchestrator.domain.packages import (
    PackageMissing,
    PackageSource,
    PackagesUnavailable,
    locate_all,
    requested_packages,
)
from cephalo_orchestrator.domain.plan import InvalidStep, RunFailure
from cephalo_orchestrator.domain.planning import (
    DeploymentPlan,
    Limits,
    PlannedStep,
    Progress,
    RunKey,
    build_plan,
    decide,
    group_done,
    next_runs,
)
from cephalo_orchestrator.domain.step_run_states import (
    ACTIVE_RUN_STATES,
    FAILED_RUN_STATES,
    StepRunState,
)
from cephalo_orchestrator.domain.steps import fail_undispatched
from cephalo_orchestrator.domain.system_variables import (
    DeploymentContext,
    StepVariables,
    output_variables,
    resolve_step_variables,
)
from cephalo_orchestrator.domain.targets import (
    MachineDirectory,
    ScriptRuns,
    TargetsRefused,
    TargetsUnavailable,
)
from cephalo_orchestrator.domain.task_log import LogSource
from cephalo_orchestrator.domain.task_states import TaskState
from cephalo_orchestrator.domain.tasks import finish_task
from cephalo_orchestrator.events import publish


async def advance_task(
    repos: Repositories,
    task_id: uuid.UUID,
    directory: MachineDirectory,
    *,
    now: datetime,
    retry_seconds: float,
    limits: Limits,
    scripts: ScriptRuns,
    packages: PackageSource,
    grace_seconds: float,
    step_timeout_seconds: int | None = None,
) -> None:
    """Plan the task if it has no plan yet, then start what may start (or finish it); a
    cancelling task is stopped instead."""
    task = await repos.tasks.lock_due_step(task_id, now)
    if task is None:
        return
    task.step_due_at = None
    if task.state == TaskState.CANCELLING:
        await continue_cancelling(repos, task, scripts, now=now, grace_seconds=grace_seconds)
        return
    if task.plan is None and not await _plan(
        repos, task, directory, now=now, retry_seconds=retry_seconds, limits=limits
    ):
        return
    try:
        await _progress(
            repos,
            task,
            packages,
            now=now,
            retry_seconds=retry_seconds,
            step_timeout_seconds=step_timeout_seconds,
        )
    except InvalidStep as error:
        await finish_task(repos, task, TaskState.FAILED, now=now, reason=str(error))


async def _plan(
    repos: Repositories,
    task: ServerTask,
    directory: MachineDirectory,
    *,
    now: datetime,
    retry_seconds: float,
    limits: Limits,
) -> bool:
    try:
        actions = words.read_actions(task.steps)
    except InvalidStep as error:
        await finish_task(repos, task, TaskState.FAILED, now=now, reason=str(error))
        return False
    try:
        machines = await directory.find_machines(task.space_id, task.environment_id, ())
    except TargetsUnavailable as error:
        text = f"Could not find the deployment targets: {error}; retrying"
        await _defer(repos, task, text, str(error), now=now, retry_seconds=retry_seconds)
        return False
    except TargetsRefused as error:
        await finish_task(repos, task, TaskState.FAILED, now=now, reason=str(error))
        return False
    options = DeploymentOptionsV1.model_validate(task.options or {})
    planned = build_plan(
        actions, machines, options, environment_name=task.environment_name, limits=limits
    )
    if planned.error is not None:
        await finish_task(repos, task, TaskState.FAILED, now=now, reason=planned.error)
        return False
    task.plan = planned.to_json()
    task.step_start_failures = 0
    task.step_start_failing_since = None
    for step in planned.steps:
        for left_out in step.excluded:
            text = f'Step {step.number} "{step.name}" leaves out {left_out.machine_name}: {left_out.reason}'
            await task_log.write(repos, task, text, now=now)
    return True


async def _defer(
    repos: Repositories,
    task: ServerTask,
    text: str,
    error: str,
    *,
    now: datetime,
    retry_seconds: float,
) -> None:
    """Keep the task Executing and ask agent-gateway or package-feed again later, within the
    retry budget; `text` goes to the task log once per outage."""
    since = task.step_start_failing_since or now
    if now - since >= timedelta(seconds=retry_seconds):
        reason = words.unreachable_reason(error, retry_seconds)
        await finish_task(repos, task, TaskState.FAILED, now=now, reason=reason)
        return
    if task.step_start_failing_since is None:
        task.step_start_failing_since = now
        await task_log.write(repos, task, text, now=now, source=LogSource.ERROR)
    task.step_start_failures += 1
    task.step_due_at = now + timedelta(seconds=words.retry_delay(task.step_start_failures))
    await repos.session.flush()


class RunProgress(Protocol):
    """What progress is computed from: a whole run, or just these columns of it."""

    @property
    def step_index(self) -> int: ...
    @property
    def machine_id(self) -> uuid.UUID | None: ...
    @property
    def attempt(self) -> int: ...
    @property
    def state(self) -> str: ...
    @property
    def outcome_override(self) -> str | None: ...


class TaskRuns:
    """One task's runs for one advance: their progress columns always, the whole runs only
    when a group starts or ends or something is dispatched (most advances of a wide step
    only find it still running)."""

    def __init__(self, repos: Repositories, task_id: uuid.UUID) -> None:
        self._repos = repos
        self._task_id = task_id
        self._whole: list[StepRun] | None = None
        self.light: Sequence[RunProgress] = ()

    async def read(self) -> None:
        self.light = await self._repos.step_runs.progress_rows(self._task_id)

    async def whole(self) -> list[StepRun]:
        if self._whole is None:
            self._whole = list(await self._repos.step_runs.for_task(self._task_id))
        return self._whole


_PLANS: dict[uuid.UUID, DeploymentPlan] = {}
_PLANS_KEPT = 256


def plan_of(task: ServerTask) -> DeploymentPlan:
    """The task's plan, parsed once per process: a plan never changes once made, and a
    thousand targets take longer to parse than the rest of an advance."""
    assert task.plan is not None
    planned = _PLANS.get(task.id)
    if planned is None:
        planned = DeploymentPlan.from_json(task.plan)
        if len(_PLANS) >= _PLANS_KEPT:
            _PLANS.pop(next(iter(_PLANS)))
        _PLANS[task.id] = planned
    return planned


def progress_of(runs: Sequence[RunProgress]) -> Progress:
    """The latest attempt of every (action, machine): running (or awaiting a decision),
    ended, or failed. A run someone chose to retry counts as not started; one they chose to
    ignore or whose machine they excluded counts as ended well."""
    latest: dict[RunKey, RunProgress] = {}
    for run in sorted(runs, key=lambda r: r.attempt):
        latest[RunKey(run.step_index, run.machine_id)] = run
    active: set[RunKey] = set()
    done: set[RunKey] = set()
    failed: set[RunKey] = set()
    for key, run in latest.items():
        override = run.outcome_override
        if override == Override.RETRIED:
            continue
        if StepRunState(run.state) in ACTIVE_RUN_STATES or override == Override.AWAITING:
            active.add(key)
            continue
        done.add(key)
        bad = run.state in FAILED_RUN_STATES or run.state == StepRunState.CANCELED
        if bad and override not in (Override.IGNORED, Override.EXCLUDED):
            failed.add(key)
    return Progress(frozenset(active), frozenset(done), frozenset(failed))


def excluded_machines(runs: Sequence[RunProgress]) -> frozenset[uuid.UUID]:
    """Machines someone excluded through guided failure: left out for the rest of the task."""
    return frozenset(
        run.machine_id
        for run in runs
        if run.outcome_override == Override.EXCLUDED and run.machine_id is not None
    )


def context_of(task: ServerTask) -> DeploymentContext:
    return DeploymentContext(
        space_id=str(task.space_id),
        task_id=str(task.id),
        deployment_id=str(task.deployment_id),
        project_id=str(task.project_id),
        project_name=task.project_name,
        release_id=str(task.release_id),
        release_number=task.release_version,
        environment_id=str(task.environment_id),
        environment_name=task.environment_name,
        channel_id=task.channel_id,
        channel_name=task.channel_name,
        tenant_id=task.tenant_id,
        deployed_by=task.deployed_by,
    )


class TaskVariables:
    """Resolves variables for one task's runs, with the outputs captured so far."""

    def __init__(self, task: ServerTask, runs: Sequence[StepRun]) -> None:
        self._task = task
        self._context = context_of(task)
        self._values = [VariableValue.model_validate(v) for v in task.variable_values or []]
        self._prompted = DeploymentOptionsV1.model_validate(task.options or {}).prompted_values
        self.outputs = _captured_outputs(runs)

    def for_run(self, step: PlannedStep | None = None, key: RunKey | None = None) -> StepVariables:
        action = None
        machine = None
        if step is not None and key is not None:
            action = next(a for a in step.actions if a.index == key.action)
            machine = next((t for t in step.targets if t.id == key.machine_id), None)
        return resolve_step_variables(
            self._context,
            self._values,
            flat=self._task.variables or {},
            prompted=self._prompted,
            outputs=self.outputs,
            step=step,
            action=action,
            machine=machine,
            error=self._task.failure_reason,
        )


def _captured_outputs(runs: Sequence[StepRun]) -> OutputVariables:
    finished = sorted(
        (run for run in runs if run.output_variables and run.finished_at is not None),
        key=lambda run: run.finished_at or run.created_at,
    )
    return output_variables(
        (
            run.step_name,
            run.machine_name,
            str(run.machine_id),
            run.output_variables,
            run.sensitive_outputs,
        )
        for run in finished
        if run.machine_id is not None
    )


async def _progress(
    repos: Repositories,
    task: ServerTask,
    packages: PackageSource,
    *,
    now: datetime,
    retry_seconds: float,
    step_timeout_seconds: int | None,
) -> None:
    planned = plan_of(task)
    runs = TaskRuns(repos, task.id)
    await runs.read()
    while task.group_index < planned.group_count:
        steps = await _group(repos, task, planned, runs, now=now)
        progress = progress_of(runs.light)
        if group_done(steps, progress):
            _note_failure(task, steps, await runs.whole(), progress)
            task.group_index += 1
            task.group_steps = None
            continue
        keys = next_runs(steps, progress, max_parallel_steps=planned.max_parallel_steps)
        if not keys:
            return
        await _dispatch(
            repos,
            task,
            planned,
            keys,
            await runs.whole(),
            packages,
            now=now,
            retry_seconds=retry_seconds,
            step_timeout_seconds=step_timeout_seconds,
        )
        return
    if task.failure_reason is not None:
        await finish_task(repos, task, TaskState.FAILED, now=now, reason=task.failure_reason)
    else:
        await finish_task(repos, task, TaskState.SUCCESS, now=now)


async def _group(
    repos: Repositories,
    task: ServerTask,
    planned: DeploymentPlan,
    runs: TaskRuns,
    *,
    now: datetime,
) -> list[PlannedStep]:
    """The current group's steps that run, decided once when the group starts."""
    group = planned.group(task.group_index)
    if task.group_steps is None:
        variables = TaskVariables(task, await runs.whole())
        failing = task.failure_reason is not None
        chosen: dict[str, list[int]] = {}
        for step in group:
            decision = decide(step, failing=failing, variables=variables.for_run(step).values)
            if decision.runs:
                chosen[str(step.number)] = [action.index for action in decision.step.actions]
            else:
                text = f'Skipping step {step.number} "{step.name}": {decision.reason}'
                await task_log.write(repos, task, text, now=now)
        task.group_steps = chosen
        task.current_step = group[0].actions[0].index if group else task.current_step
    kept = task.group_steps
    excluded = excluded_machines(runs.light)
    return [
        replace(
            step,
            actions=tuple(a for a in step.actions if a.index in kept[str(step.number)]),
            targets=tuple(t for t in step.targets if t.id not in excluded),
        )
        for step in group
        if str(step.number) in kept
    ]


def _note_failure(
    task: ServerTask, steps: Sequence[PlannedStep], runs: Sequence[StepRun], progress: Progress
) -> None:
    """The first failed step of the deployment becomes the task's failure reason."""
    if task.failure_reason is not None:
        return
    failed_keys = set(progress.failed)
    for step in steps:
        indexes = {action.index for action in step.actions}
        failures = [
            RunFailure(run.machine_name, run.exit_code, run.error)
            for run in runs
            if run.step_index in indexes
            and RunKey(run.step_index, run.machine_id) in failed_keys
            and run.state != StepRunState.SUCCESS
        ]
        aborted = [
            run
            for run in runs
            if run.step_index in indexes and run.machine_id is None and run.error
        ]
        if aborted:
            task.failure_reason = f'Step "{step.name}" was {aborted[-1].error}'
            return
        if failures:
            task.failure_reason = words.step_failed_reason(step.name, _latest(failures))
            return


def _latest(failures: list[RunFailure]) -> list[RunFailure]:
    by_machine = {failure.machine_name: failure for failure in failures}
    return list(by_machine.values())


async def _dispatch(
    repos: Repositories,
    task: ServerTask,
    planned: DeploymentPlan,
    keys: Sequence[RunKey],
    runs: Sequence[StepRun],
    packages: PackageSource,
    *,
    now: datetime,
    retry_seconds: float,
    step_timeout_seconds: int | None,
) -> None:
    if not keys:
        return
    variables = TaskVariables(task, runs)
    attempts = {RunKey(run.step_index, run.machine_id): run.attempt for run in runs}
    by_action: dict[int, list[RunKey]] = {}
    for key in keys:
        by_action.setdefault(key.action, []).append(key)
    for index, action_keys in by_action.items():
        step, action = planned.action(index)
        snapshot = ScriptActionSnapshot.model_validate(task.steps[index])
        script = words.action_script(snapshot)
        located = await _locate(
            repos, task, snapshot, packages, now=now, retry_seconds=retry_seconds
        )
        if located is None:
            return
        targets = {target.id: target for target in step.targets}
        names = [targets[key.machine_id].name for key in action_keys if key.machine_id in targets]
        line = words.running_line(step.number, step.name, action.name, names)
        await task_log.write(repos, task, line, now=now)
        for key in action_keys:
            machine = targets.get(key.machine_id) if key.machine_id else None
            run = StepRun(
                id=uuid7(),
                task_id=task.id,
                step_index=index,
                step_name=action.name,
                machine_id=key.machine_id,
                machine_name=machine.name if machine else "Cephalo Server",
                ticket=str(uuid7()),
                attempt=attempts.get(key, 0) + 1,
                state=StepRunState.PENDING.value,
            )
            repos.session.add(run)  # flushed with the others: one round trip for a wide step
            if machine is None or isinstance(located, PackageMissing):
                await repos.session.flush()
            if machine is None:
                await raise_manual_intervention(repos, task, run, snapshot.properties, now=now)
                continue
            if isinstance(located, PackageMissing):
                await fail_undispatched(repos, task, run, str(located), now=now)
                continue
            publish.step_dispatch(
                repos.session,
                task,
                run,
                action=snapshot,
                script_body=script.body,
                syntax=script.syntax,
                variables=variables.for_run(step, key),
                packages=located,
                default_timeout_seconds=step_timeout_seconds,
            )


async def _locate(
    repos: Repositories,
    task: ServerTask,
    action: ScriptActionSnapshot,
    packages: PackageSource,
    *,
    now: datetime,
    retry_seconds: float,
) -> list[PackageAcquisitionV1] | PackageMissing | None:
    """The action's packages with their links; the reason the step fails; or None when the
    feed is unreachable and the task was deferred."""
    wanted = requested_packages(action)
    if not wanted:
        return []
    try:
        located = await locate_all(packages, task.space_id, wanted)
    except PackageMissing as error:
        return error
    except PackagesUnavailable as error:
        text = f'Could not locate the packages of step "{action.name}": {error}; retrying'
        await _defer(repos, task, text, str(error), now=now, retry_seconds=retry_seconds)
        return None
    task.step_start_failures = 0
    task.step_start_failing_since = None
    return located
