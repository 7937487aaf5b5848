from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from cephalo_orchestrator.deps import ReposDep
from cephalo_orchestrator.domain.task_states import TaskState
from cephalo_orchestrator.domain.tasks import get_task, list_tasks, read_log, step_runs
from cephalo_orchestrator.schemas.tasks import ServerTask, ServerTaskDetail, StepRun, TaskLogLine

router = APIRouter(prefix="/api/v1/spaces/{space_id}/tasks", tags=["tasks"])


@router.get("")
async def list_(
    space_id: uuid.UUID,
    repos: ReposDep,
    response: Response,
    deployment_id: uuid.UUID | None = None,
    state: TaskState | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> list[ServerTask]:
    """Newest first; `X-Total-Count` says how many match."""
    tasks, total = await list_tasks(
        repos, space_id, deployment_id=deployment_id, state=state, limit=limit, offset=offset
    )
    response.headers["X-Total-Count"] = str(total)
    return [ServerTask.model_validate(task) for task in tasks]


@router.get("/{task_id}")
async def get(space_id: uuid.UUID, task_id: uuid.UUID, repos: ReposDep) -> ServerTaskDetail:
    task = await get_task(repos, space_id, task_id)
    runs = [StepRun.model_validate(run) for run in await step_runs(repos, task)]
    return ServerTaskDetail.of(task, runs)


@router.get("/{task_id}/log")
async def log(
    space_id: uuid.UUID,
    task_id: uuid.UUID,
    repos: ReposDep,
    after: Annotated[int, Query(ge=0, description="Only lines with a greater id.")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[TaskLogLine]:
    """Lines in order; poll with `after=<last id seen>` for new ones."""
    lines = await read_log(repos, space_id, task_id, after=after, limit=limit)
    return [TaskLogLine.model_validate(line) for line in lines]
