"""File transfer to and from an agent: streams beside the RPC, verified end to end.

`upload` sends the file as a stream with the `upload_file` call that names it (size, SHA-256)
(the agent refuses anything else and moves it into place atomically). `download` asks
`download_file`, receives the announced stream into the destination, and checks it against
the announced size and SHA-256. Memory stays flat: bytes go file to socket to file.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from pathlib import Path
from typing import Protocol

from cephalo_agent_gateway.domain.scripts import RemoteCallFailed
from cephalo_common.agent_protocol import (
    DownloadArtifactRequest,
    DownloadFileRequest,
    FileMethods,
    FileTransferResult,
    RequestMessage,
    ResponseMessage,
    Services,
    StreamRef,
    UploadFileCommand,
)
from cephalo_common.ids import uuid7

_CHUNK = 1024 * 1024


class StreamTransport(Protocol):
    async def invoke(self, machine_id: uuid.UUID, request: RequestMessage) -> ResponseMessage: ...

    async def invoke_upload(
        self, machine_id: uuid.UUID, request: RequestMessage, source: Path
    ) -> ResponseMessage: ...

    async def invoke_download(
        self, machine_id: uuid.UUID, request: RequestMessage, destination: Path
    ) -> ResponseMessage: ...


def digest(path: Path) -> tuple[int, str]:
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            size += len(chunk)
            sha.update(chunk)
    return size, sha.hexdigest()


class FileTransferClient:
    def __init__(self, transport: StreamTransport, machine_id: uuid.UUID) -> None:
        self._transport = transport
        self._machine_id = machine_id

    async def upload(self, source: Path, remote_path: str) -> FileTransferResult:
        size, sha256 = await asyncio.to_thread(digest, source)
        stream = StreamRef(id=uuid.uuid4().hex, size=size, sha256=sha256)
        command = UploadFileCommand(path=remote_path, stream=stream)
        response = await self._transport.invoke_upload(
            self._machine_id, _request(FileMethods.UPLOAD, command.model_dump(mode="json")), source
        )
        return _result(FileMethods.UPLOAD, response)

    async def download(self, remote_path: str, destination: Path) -> FileTransferResult:
        params = DownloadFileRequest(path=remote_path).model_dump(mode="json")
        return await self._receive(FileMethods.DOWNLOAD, params, destination)

    async def download_artifact(
        self, ticket: str, announced_path: str, destination: Path, max_bytes: int
    ) -> FileTransferResult:
        """A file the step `ticket` announced; the agent refuses it outside the step's work
        directory or over `max_bytes`."""
        request = DownloadArtifactRequest(ticket=ticket, path=announced_path, max_bytes=max_bytes)
        params = request.model_dump(mode="json")
        return await self._receive(FileMethods.DOWNLOAD_ARTIFACT, params, destination)

    async def _receive(
        self, method: str, params: dict[str, object], destination: Path
    ) -> FileTransferResult:
        response = await self._transport.invoke_download(
            self._machine_id, _request(method, params), destination
        )
        result = _result(method, response)
        size, sha256 = await asyncio.to_thread(digest, destination)
        if (size, sha256) != (result.size, result.sha256):
            destination.unlink(missing_ok=True)
            raise RemoteCallFailed(
                method,
                "StreamMismatch",
                f"received {size} bytes with SHA-256 {sha256}, "
                f"announced {result.size} bytes with {result.sha256}",
            )
        return result


def _request(method: str, params: dict[str, object]) -> RequestMessage:
    return RequestMessage(
        id=str(uuid7()), service=Services.FILE_TRANSFER, method=method, params=params
    )


def _result(method: str, response: ResponseMessage) -> FileTransferResult:
    if response.error is not None:
        raise RemoteCallFailed(method, response.error.type, response.error.message)
    return FileTransferResult.model_validate(response.result or {})
