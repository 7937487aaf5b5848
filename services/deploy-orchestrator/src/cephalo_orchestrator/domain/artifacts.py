"""Task artifacts: the files steps published, recorded from their verdicts.

Only artifacts whose bytes agent-gateway stored (an object name in `step.finished`) are
recorded; the bytes stay in the task artifact object store and are read at download.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from cephalo_common.contracts import ArtifactV1
from cephalo_common.errors import NotFound
from cephalo_orchestrator.db.models import StepRun, TaskArtifact
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain.tasks import get_task


async def record_artifacts(
    repos: Repositories, run: StepRun, artifacts: Sequence[ArtifactV1]
) -> None:
    await repos.artifacts.add_new(
        {
            "task_id": run.task_id,
            "step_run_id": run.id,
            "step_name": run.step_name,
            "machine_name": run.machine_name,
            "name": artifact.name[:500],
            "size": artifact.size,
            "sha256": artifact.sha256,
            "object_name": artifact.object_name,
        }
        for artifact in artifacts
        if artifact.object_name
    )


async def task_artifacts(
    repos: Repositories, space_id: uuid.UUID, task_id: uuid.UUID
) -> Sequence[TaskArtifact]:
    task = await get_task(repos, space_id, task_id)
    return await repos.artifacts.of_task(task.id)


async def task_artifact(
    repos: Repositories, space_id: uuid.UUID, task_id: uuid.UUID, artifact_id: uuid.UUID
) -> TaskArtifact:
    task = await get_task(repos, space_id, task_id)
    artifact = await repos.artifacts.find_in_task(task.id, artifact_id)
    if artifact is None:
        raise NotFound(f"artifact {artifact_id} was not found in task {task_id}")
    return artifact
