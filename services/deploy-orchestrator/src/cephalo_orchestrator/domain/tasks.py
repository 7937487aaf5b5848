"""ServerTasks: created from a deployment request, queued per lane, started, and finished.

A lane is one project deploying to one environment: at most one task per lane executes at a
time (a partial unique index enforces it; an advisory lock keeps instances from racing).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from cephalo_common.contracts import DeploymentRequestedV1
from cephalo_common.errors import Invalid, NotFound
from cephalo_common.messaging.envelope import Envelope
from cephalo_orchestrator.db.models import ServerTask, StepRun, TaskLogLine
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain import plan, task_log
from cephalo_orchestrator.domain.task_log import LogSource
from cephalo_orchestrator.domain.task_states import TaskState, ensure_transition
from cephalo_orchestrator.events import publish

WAITING_SCAN_LIMIT = 200


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as error:
        raise Invalid(f"{field} {value!r} is not a UUID") from error


async def accept_deployment(
    repos: Repositories,
    space: str,
    request: DeploymentRequestedV1,
    *,
    now: datetime,
    caused_by: Envelope,
) -> ServerTask | None:
    """Queue one task for the deployment; None when one already exists (a re-delivery)."""
    task = await repos.tasks.add_if_absent(
        space_id=_uuid(space, "space"),
        deployment_id=_uuid(request.deployment_id, "deployment_id"),
        release_id=_uuid(request.release_id, "release_id"),
        release_version=request.release_version,
        project_id=_uuid(request.project_id, "project_id"),
        project_name=request.project_name,
        environment_id=_uuid(request.environment_id, "environment_id"),
        environment_name=request.environment_name,
        steps=[step.model_dump(mode="json") for step in request.steps],
        variables=dict(request.variables),
        variable_values=[value.model_dump(mode="json") for value in request.variable_values],
        options=request.options.model_dump(mode="json"),
        channel_id=request.channel_id,
        channel_name=request.channel_name,
        tenant_id=request.tenant_id,
        deployed_by=request.deployed_by,
        group_index=0,
        state=TaskState.QUEUED.value,
        current_step=0,
        step_start_failures=0,
        correlation_id=caused_by.correlationid or caused_by.id,
        queued_at=now,
    )
    if task is None:
        return None
    await task_log.write(
        repos,
        task,
        f"Queued deployment of {task.project_name} release {task.release_version} "
        f"to {task.environment_name}",
        now=now,
    )
    publish.task_state_changed(repos.session, task, caused_by)
    return task


async def start_queued_tasks(
    repos: Repositories,
    *,
    node: str,
    max_concurrent: int,
    now: datetime,
    lease_until: datetime | None = None,
) -> list[ServerTask]:
    """Start the oldest queued tasks whose lane is free, up to this node's free capacity."""
    free = max_concurrent - await repos.tasks.count_running_on_node(node)
    started: list[ServerTask] = []
    if free <= 0:
        await _note_full(repos, plan.capacity_reason(max_concurrent))
        return started
    lanes: set[tuple[uuid.UUID, uuid.UUID]] = set()
    for task in await repos.tasks.lock_startable(free):
        lane = (task.project_id, task.environment_id)
        if lane in lanes or not await repos.tasks.try_lock_lane(*lane):
            continue
        lanes.add(lane)
        if await repos.tasks.find_running_in_lane(*lane) is not None:
            continue
        await _start(repos, task, node=node, now=now, lease_until=lease_until)
        started.append(task)
    return started


async def _start(
    repos: Repositories,
    task: ServerTask,
    *,
    node: str,
    now: datetime,
    lease_until: datetime | None,
) -> None:
    task.state = ensure_transition(TaskState(task.state), TaskState.EXECUTING).value
    task.reason = None
    task.started_at = now
    task.server_node = node
    task.lease_expires_at = lease_until
    task.current_step = 0
    task.group_index = 0
    task.step_due_at = now
    await repos.session.flush()
    text = plan.deploying_line(task.project_name, task.release_version, task.environment_name)
    await task_log.write(repos, task, text, now=now)
    publish.task_state_changed(repos.session, task)


async def _note_full(repos: Repositories, reason: str) -> None:
    """Queued tasks say why they wait when this instance is full (another may start them)."""
    for task_id, current in await repos.tasks.find_startable(WAITING_SCAN_LIMIT):
        if current == reason:
            continue
        task = await repos.tasks.lock_queued(task_id)
        if task is not None:
            task.reason = reason
    await repos.session.flush()


async def note_waiting_tasks(repos: Repositories) -> None:
    """Tell each queued task behind a running one why it waits (locking only changed ones)."""
    for blocked in await repos.tasks.find_blocked(WAITING_SCAN_LIMIT):
        reason = plan.waiting_reason(str(blocked.blocking_deployment_id), blocked.environment_name)
        if blocked.reason == reason:
            continue
        task = await repos.tasks.lock_queued(blocked.task_id)
        if task is not None:
            task.reason = reason
    await repos.session.flush()


async def finish_task(
    repos: Repositories,
    task: ServerTask,
    state: TaskState,
    *,
    now: datetime,
    reason: str | None = None,
    caused_by: Envelope | None = None,
) -> None:
    """The one way a task ends: state, log line and both events in the caller's transaction."""
    task.state = ensure_transition(TaskState(task.state), state).value
    task.reason = reason
    task.completed_at = now
    task.step_due_at = None
    await repos.session.flush()
    if state is TaskState.SUCCESS:
        await task_log.write(repos, task, plan.SUCCESS_LINE, now=now)
    else:
        await task_log.write(repos, task, reason or str(state), now=now, source=LogSource.ERROR)
    publish.task_state_changed(repos.session, task, caused_by)
    publish.deployment_finished(repos.session, task, caused_by)


async def get_task(repos: Repositories, space_id: uuid.UUID, task_id: uuid.UUID) -> ServerTask:
    task = await repos.tasks.find_in_space(space_id, task_id)
    if task is None:
        raise NotFound(f"task {task_id} was not found in this space")
    return task


async def list_tasks(
    repos: Repositories,
    space_id: uuid.UUID,
    *,
    deployment_id: uuid.UUID | None = None,
    state: TaskState | None = None,
    limit: int,
    offset: int,
) -> tuple[Sequence[ServerTask], int]:
    """A page of the space's tasks, newest first, and how many match in total."""
    state_value = state.value if state else None
    tasks = await repos.tasks.list_in_space(
        space_id, deployment_id=deployment_id, state=state_value, limit=limit, offset=offset
    )
    total = await repos.tasks.count_in_space(
        space_id, deployment_id=deployment_id, state=state_value
    )
    return tasks, total


async def step_runs(repos: Repositories, task: ServerTask) -> Sequence[StepRun]:
    return await repos.step_runs.for_task(task.id)


async def read_log(
    repos: Repositories, space_id: uuid.UUID, task_id: uuid.UUID, *, after: int, limit: int
) -> Sequence[TaskLogLine]:
    task = await get_task(repos, space_id, task_id)
    return await repos.log.after(task.id, after, limit)
