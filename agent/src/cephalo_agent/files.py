"""File transfer: packages and artifacts travel as streams beside the RPC, never inside it.

`upload_file(path, stream)` moves a stream that arrived beforehand (a `PUT /streams/<id>` in
listening mode, binary frames in polling mode) into `files/<path>`, after checking its size
and SHA-256, with an atomic rename: a half-received file never appears under its name.
`download_file(path)` announces a stream id whose bytes follow (the response's stream).

Paths are relative to the agent's `files/` directory; absolute paths, `..`, and anything
that resolves outside it (symlinks included) are refused.

`download_artifact(ticket, path)` hands out a file a step announced as an artifact. It is not
a general file-read: the path must resolve (symlinks included) inside that ticket's work
directory, and the file must fit the caller's size bound; anything else is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import time
import uuid
from pathlib import Path, PurePosixPath

from cephalo_agent.journal import validate_ticket
from cephalo_common.agent_protocol import (
    DownloadArtifactRequest,
    DownloadFileRequest,
    FileTransferResult,
    StreamRef,
    UploadFileCommand,
)

_READ_CHUNK = 1024 * 1024


class StreamTooLarge(ValueError):
    """A stream went over the agent's limit."""


class StreamMismatch(ValueError):
    """The received bytes are not what the upload command says (size or SHA-256)."""


class InvalidPath(ValueError):
    """A remote path that could escape the agent's `files/` directory."""


class IncomingStream:
    """A stream being received into a staging file; `finish()` makes it available."""

    def __init__(self, store: StreamStore, stream_id: str) -> None:
        self._store = store
        self.stream_id = stream_id
        self.partial = store.directory / f"{stream_id}.partial"
        self._handle = self.partial.open("wb")
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self._store.max_bytes:
            raise StreamTooLarge(f"a stream is at most {self._store.max_bytes} bytes")
        self._digest.update(chunk)
        self._handle.write(chunk)

    def finish(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        final = self._store.directory / self.stream_id
        os.replace(self.partial, final)
        self._store.received[self.stream_id] = (self.size, self._digest.hexdigest(), time.time())

    def abort(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()
        self.partial.unlink(missing_ok=True)


class StreamStore:
    """Streams staged in `streams/`: received ones wait for `upload_file`, outgoing ones for
    their download. Both expire after `ttl_seconds`."""

    def __init__(
        self, directory: Path, *, max_bytes: int = 16 * 1024**3, ttl_seconds: float = 600.0
    ) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.ttl_seconds = ttl_seconds
        self.received: dict[str, tuple[int, str, float]] = {}
        self._outgoing: dict[str, tuple[Path, float]] = {}
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    def open_incoming(self, stream_id: str) -> IncomingStream:
        self.expire()
        _check_id(stream_id)
        return IncomingStream(self, stream_id)

    def claim(self, ref: StreamRef) -> Path:
        """The staged file of a received stream, if it is exactly what `ref` describes."""
        received = self.received.pop(ref.id, None)
        staged = self.directory / ref.id
        if received is None or not staged.exists():
            raise StreamMismatch(f"stream {ref.id} was not received")
        size, digest, _ = received
        if size != ref.size or digest != ref.sha256:
            staged.unlink(missing_ok=True)
            raise StreamMismatch(
                f"stream {ref.id} has {size} bytes with SHA-256 {digest}, "
                f"not {ref.size} bytes with {ref.sha256}"
            )
        return staged

    def offer(self, source: Path) -> str:
        """Announce `source` as a new outgoing stream; returns its id."""
        self.expire()
        stream_id = uuid.uuid4().hex
        self._outgoing[stream_id] = (source, time.time())
        return stream_id

    def take_outgoing(self, stream_id: str) -> Path | None:
        entry = self._outgoing.pop(stream_id, None)
        return entry[0] if entry is not None else None

    def expire(self) -> None:
        cutoff = time.time() - self.ttl_seconds
        for stream_id, (_, _, at) in list(self.received.items()):
            if at < cutoff:
                del self.received[stream_id]
                (self.directory / stream_id).unlink(missing_ok=True)
        for stream_id, (_, at) in list(self._outgoing.items()):
            if at < cutoff:
                del self._outgoing[stream_id]


def _check_id(stream_id: str) -> None:
    if len(stream_id) != 32 or any(c not in "0123456789abcdef" for c in stream_id):
        raise ValueError("a stream id is 32 lower-case hex digits")


def resolve_inside(root: Path, relative: str) -> Path:
    """`root/relative`, refusing anything that could land outside `root`."""
    pure = PurePosixPath(relative)
    if pure.is_absolute() or not pure.parts or any(part in ("..", "") for part in pure.parts):
        raise InvalidPath(f"{relative!r} must be a relative path without '..'")
    base = root.resolve()
    target = (base / pure).resolve()
    if not target.is_relative_to(base) or target == base:
        raise InvalidPath(f"{relative!r} resolves outside the agent's files directory")
    return target


def file_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            size += len(chunk)
            digest.update(chunk)
    return size, digest.hexdigest()


class ArtifactTooLarge(ValueError):
    """An artifact over the size the server accepts."""


def resolve_artifact(work: Path, announced: str) -> Path:
    """The announced artifact path, refused unless it resolves inside `work`."""
    base = work.resolve()
    pure = PurePosixPath(announced)
    target = (Path(pure) if pure.is_absolute() else base / pure).resolve()
    if not target.is_relative_to(base) or target == base:
        raise InvalidPath(f"{announced!r} is outside the step's work directory")
    return target


class FileTransferService:
    """`upload_file` and `download_file` under `files_dir`; `download_artifact` under a
    ticket's directory in `work_dir` (when the agent has one)."""

    def __init__(self, files_dir: Path, streams: StreamStore, work_dir: Path | None = None) -> None:
        self.files_dir = files_dir
        self.streams = streams
        self.work_dir = work_dir
        files_dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def upload_file(self, command: UploadFileCommand) -> FileTransferResult:
        target = resolve_inside(self.files_dir, command.path)
        staged = self.streams.claim(command.stream)
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.replace(staged, target)
        return FileTransferResult(
            path=command.path, size=command.stream.size, sha256=command.stream.sha256
        )

    async def download_file(self, request: DownloadFileRequest) -> FileTransferResult:
        source = resolve_inside(self.files_dir, request.path)
        if not source.is_file():
            raise FileNotFoundError(f"no file {request.path!r} on this agent")
        size, digest = await asyncio.to_thread(file_digest, source)
        stream = StreamRef(id=self.streams.offer(source), size=size, sha256=digest)
        return FileTransferResult(path=request.path, size=size, sha256=digest, stream=stream)

    async def download_artifact(self, request: DownloadArtifactRequest) -> FileTransferResult:
        if self.work_dir is None:
            raise InvalidPath("this agent hands out no artifacts")
        source = resolve_artifact(self.work_dir / validate_ticket(request.ticket), request.path)
        if not source.is_file():
            raise FileNotFoundError(f"no artifact {request.path!r} for {request.ticket}")
        if source.stat().st_size > request.max_bytes:
            raise ArtifactTooLarge(f"{request.path!r} is over {request.max_bytes} bytes")
        size, digest = await asyncio.to_thread(file_digest, source)
        stream = StreamRef(id=self.streams.offer(source), size=size, sha256=digest)
        return FileTransferResult(path=request.path, size=size, sha256=digest, stream=stream)
