"""Interruptions of a task (guided failure, manual intervention) and cancelling a task."""

from __future__ import annotations

import uuid

from fastapi import APIRouter

from cephalo_common.ids import utc_now
from cephalo_orchestrator.deps import ReposDep, UserDep
from cephalo_orchestrator.domain import interruptions as domain
from cephalo_orchestrator.domain.cancellation import request_cancel
from cephalo_orchestrator.domain.tasks import get_task
from cephalo_orchestrator.schemas.interruptions import InterruptionSubmit, InterruptionView
from cephalo_orchestrator.schemas.tasks import ServerTask

router = APIRouter(prefix="/api/v1/spaces/{space_id}/tasks/{task_id}", tags=["interruptions"])


@router.get("/interruptions")
async def list_(space_id: uuid.UUID, task_id: uuid.UUID, repos: ReposDep) -> list[InterruptionView]:
    task = await get_task(repos, space_id, task_id)
    found = await repos.interruptions.for_task(task.id)
    return [InterruptionView.model_validate(item) for item in found]


@router.get("/interruptions/{interruption_id}")
async def get(
    space_id: uuid.UUID, task_id: uuid.UUID, interruption_id: uuid.UUID, repos: ReposDep
) -> InterruptionView:
    found = await domain.get_interruption(repos, space_id, task_id, interruption_id)
    return InterruptionView.model_validate(found)


@router.post("/interruptions/{interruption_id}/responsible")
async def take_responsibility(
    space_id: uuid.UUID,
    task_id: uuid.UUID,
    interruption_id: uuid.UUID,
    repos: ReposDep,
    user: UserDep,
) -> InterruptionView:
    """The caller becomes responsible (taking over from anyone else); 409 once answered."""
    found = await domain.take_responsibility(
        repos, space_id, task_id, interruption_id, user=user, now=utc_now()
    )
    return InterruptionView.model_validate(found)


@router.post("/interruptions/{interruption_id}/submit")
async def submit(
    space_id: uuid.UUID,
    task_id: uuid.UUID,
    interruption_id: uuid.UUID,
    body: InterruptionSubmit,
    repos: ReposDep,
    user: UserDep,
) -> InterruptionView:
    """Answer with one of `choices`; 409 if someone else is responsible or it was answered."""
    found = await domain.submit(
        repos,
        space_id,
        task_id,
        interruption_id,
        user=user,
        choice=body.result,
        notes=body.notes,
        now=utc_now(),
    )
    return InterruptionView.model_validate(found)


@router.post("/cancel", status_code=202)
async def cancel(
    space_id: uuid.UUID, task_id: uuid.UUID, repos: ReposDep, user: UserDep
) -> ServerTask:
    """Queued: Canceled at once. Running: Cancelling until its steps stop (or are abandoned
    after the grace period). 409 once the task has ended."""
    task = await request_cancel(repos, space_id, task_id, user=user, now=utc_now())
    return ServerTask.model_validate(task)
