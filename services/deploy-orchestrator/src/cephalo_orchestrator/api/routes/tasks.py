from __future__ import annotations

import urllib.parse
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from cephalo_common.errors import NotFound
from cephalo_common.messaging.artifacts import ArtifactMissing
from cephalo_orchestrator.deps import ArtifactStoreDep, ReposDep
from cephalo_orchestrator.domain.artifacts import task_artifact, task_artifacts
from cephalo_orchestrator.domain.task_states import TaskState
from cephalo_orchestrator.domain.tasks import get_task, list_tasks, read_log, step_runs
from cephalo_orchestrator.schemas.tasks import (
    ServerTask,
    ServerTaskDetail,
    StepRun,
    TaskArtifact,
    TaskLogLine,
)

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


@router.get("/{task_id}/artifacts")
async def artifacts(space_id: uuid.UUID, task_id: uuid.UUID, repos: ReposDep) -> list[TaskArtifact]:
    """The files the task's steps published, oldest first."""
    found = await task_artifacts(repos, space_id, task_id)
    return [TaskArtifact.model_validate(artifact) for artifact in found]


@router.get(
    "/{task_id}/artifacts/{artifact_id}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
async def artifact_content(
    space_id: uuid.UUID,
    task_id: uuid.UUID,
    artifact_id: uuid.UUID,
    repos: ReposDep,
    store: ArtifactStoreDep,
) -> Response:
    """The artifact's bytes, as a download named like the file the step published."""
    artifact = await task_artifact(repos, space_id, task_id, artifact_id)
    try:
        data = await store.get(artifact.object_name)
    except ArtifactMissing:
        raise NotFound(f"the bytes of artifact {artifact.name!r} are no longer stored") from None
    quoted = urllib.parse.quote(artifact.name)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quoted}"},
    )
