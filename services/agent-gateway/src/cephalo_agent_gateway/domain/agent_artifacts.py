"""Artifacts of a step on an agent: their bytes fetched from the agent into the task store.

The step announces each artifact by its path on the agent; once the script is Complete (and
before `complete_script` deletes the work directory) each one is downloaded with
`download_artifact`, which the agent refuses outside the step's work directory or over
`MAX_ARTIFACT_BYTES`. The download is checked against the announced SHA-256, then put in the
`cephalo-task-artifacts` store under the same object name as an SSH step's artifact.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from pathlib import Path

from cephalo_agent_gateway.db.models import ScriptRun
from cephalo_agent_gateway.domain.files import FileTransferClient
from cephalo_agent_gateway.domain.scripts import RemoteCallFailed
from cephalo_agent_gateway.domain.step_actions import StepResults
from cephalo_agent_gateway.domain.transport import TransportError
from cephalo_common.contracts import ArtifactV1
from cephalo_common.messaging.artifacts import MAX_ARTIFACT_BYTES, TaskArtifactStore


async def keep_agent_artifacts(
    files: FileTransferClient, store: TaskArtifactStore, run: ScriptRun, results: StepResults
) -> list[str]:
    """Keep every announced artifact not kept yet; returns why some were not, for the log."""
    problems: list[str] = []
    for index, (path, artifact) in enumerate(list(results.artifacts.items())):
        if artifact.object_name is not None:
            continue
        try:
            results.artifacts[path] = await _keep(files, store, run, index, path, artifact)
        except (RemoteCallFailed, TransportError, OSError) as error:
            problems.append(f"The artifact {artifact.name!r} was not kept: {error}")
    return problems


async def _keep(
    files: FileTransferClient,
    store: TaskArtifactStore,
    run: ScriptRun,
    index: int,
    path: str,
    artifact: ArtifactV1,
) -> ArtifactV1:
    with tempfile.TemporaryDirectory(prefix="cephalo-artifact-") as directory:
        destination = Path(directory) / "artifact"
        result = await files.download_artifact(run.ticket, path, destination, MAX_ARTIFACT_BYTES)
        if result.size > MAX_ARTIFACT_BYTES:
            raise OSError(f"it is {result.size} bytes, over {MAX_ARTIFACT_BYTES}")
        data = await asyncio.to_thread(destination.read_bytes)
    object_name = f"{run.space_id}/{run.task_id}/{run.ticket}/{index}"
    try:
        await store.put(object_name, data)
    except Exception as error:  # NATS errors have no common base
        raise OSError(f"the artifact store refused it ({error})") from error
    return artifact.model_copy(
        update={
            "size": len(data),
            "object_name": object_name,
            "sha256": hashlib.sha256(data).hexdigest(),
        }
    )
