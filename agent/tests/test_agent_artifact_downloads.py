"""`download_artifact` hands out only files inside the step's own work directory.

It is the one way the server reads a step's files back, so it must not become a general
file-read: absolute paths elsewhere, `..`, symlinks that leave the directory, another
ticket's files and files over the caller's bound are all refused, over the wire too.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from cephalo_agent.files import (
    ArtifactTooLarge,
    FileTransferService,
    InvalidPath,
    StreamStore,
)
from cephalo_agent.scripts import ScriptService
from cephalo_agent.service import AgentService
from cephalo_agent.steprunner.output import StepOutput
from cephalo_common.agent_protocol import (
    STEP_ARTIFACTS_FEATURE,
    DownloadArtifactRequest,
    FileMethods,
    RequestMessage,
    Services,
)

TICKET = "ticket-1"


@pytest.fixture
def service(tmp_path: Path) -> FileTransferService:
    work = tmp_path / "work"
    (work / TICKET).mkdir(parents=True)
    (work / "ticket-2").mkdir()
    (work / TICKET / "report.txt").write_bytes(b"all green\n")
    (work / "ticket-2" / "theirs.txt").write_text("not yours")
    (tmp_path / "outside.txt").write_text("secret")
    (work / TICKET / "link.txt").symlink_to(tmp_path / "outside.txt")
    return FileTransferService(tmp_path / "files", StreamStore(tmp_path / "streams"), work)


def request(path: str, max_bytes: int = 1024) -> DownloadArtifactRequest:
    return DownloadArtifactRequest(ticket=TICKET, path=path, max_bytes=max_bytes)


async def test_an_artifact_in_the_work_directory_is_offered_as_a_stream(
    service: FileTransferService,
) -> None:
    assert service.work_dir is not None
    absolute = service.work_dir / TICKET / "report.txt"
    for path in (str(absolute), "report.txt"):
        result = await service.download_artifact(request(path))
        assert (result.size, result.sha256) == (10, hashlib.sha256(b"all green\n").hexdigest())
        assert result.stream is not None
        assert service.streams.take_outgoing(result.stream.id) == absolute.resolve()


@pytest.mark.parametrize(
    "path",
    [
        "../outside.txt",
        "../../outside.txt",
        "link.txt",
        "../ticket-2/theirs.txt",
        ".",
        "/etc/passwd",
    ],
)
async def test_paths_outside_the_steps_work_directory_are_refused(
    service: FileTransferService, path: str
) -> None:
    with pytest.raises(InvalidPath):
        await service.download_artifact(request(path))


async def test_an_absolute_path_outside_is_refused(
    service: FileTransferService, tmp_path: Path
) -> None:
    with pytest.raises(InvalidPath):
        await service.download_artifact(request(str(tmp_path / "outside.txt")))


async def test_an_artifact_over_the_bound_is_refused(service: FileTransferService) -> None:
    with pytest.raises(ArtifactTooLarge):
        await service.download_artifact(request("report.txt", max_bytes=9))


async def test_the_refusal_travels_as_a_remote_error(
    service: FileTransferService, tmp_path: Path
) -> None:
    agent = AgentService(ScriptService(tmp_path / "tickets", tmp_path / "work"), files=service)
    assert STEP_ARTIFACTS_FEATURE in agent.capabilities.get_capabilities().contract_versions
    response = await agent.handle(
        RequestMessage(
            id="1",
            service=Services.FILE_TRANSFER,
            method=FileMethods.DOWNLOAD_ARTIFACT,
            params=request("/etc/passwd").model_dump(mode="json"),
        )
    )
    assert response.error is not None and response.error.type == "InvalidPath"
    assert response.result is None


def test_the_runner_copies_an_artifact_from_outside_its_work_directory_in(
    tmp_path: Path,
) -> None:
    """So the server can fetch it: a deployed package's folder is outside the work dir."""
    work = tmp_path / "work" / TICKET
    work.mkdir(parents=True)
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "settings.json").write_text("{}")
    (work / "inside.txt").write_text("in")
    stdout, stderr = io.StringIO(), io.StringIO()
    output = StepOutput(stdout, stderr, work_dir=work)
    output.artifact(tmp_path / "app" / "settings.json", "published.json")
    output.artifact(work / "inside.txt")
    [(copied, name), (inside, _)] = output.artifacts
    assert copied == work.resolve() / "artifacts" / "0" / "published.json"
    assert (name, copied.read_text()) == ("published.json", "{}")
    assert inside == work / "inside.txt"
    assert stderr.getvalue() == ""
