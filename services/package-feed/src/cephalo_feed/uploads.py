"""Receiving a push: the request body streams to a temporary file while it is hashed.

Nothing is held in memory beyond one write buffer (1 MiB) and the multipart parser's
state. The body is cut off at the size limit (413), when the client stalls or takes too
long (408), or when the multipart form is not what a push is (422); in every such case the
temporary file is deleted before the error leaves this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import anyio.to_thread
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from cephalo_common.errors import Invalid
from cephalo_feed.errors import ClientGone, PayloadTooLarge, RequestTimeout
from cephalo_feed.settings import UploadLimits

WRITE_BUFFER_BYTES = 1024 * 1024
FILE_FIELDS = frozenset({"file", "data"})
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 16
DRAIN_SECONDS = 2.0
TEMP_PREFIX = "upload-"
TEMP_SUFFIX = ".part"


@dataclass
class ReceivedUpload:
    """A complete upload on disk; the caller owns `path` and must `discard()` it."""

    path: Path
    filename: str
    size: int
    sha256: str
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class TempFile:
    """A private temporary file written in large batches off the event loop."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=TEMP_SUFFIX, dir=directory)
        self.path = Path(name)
        self._handle = os.fdopen(descriptor, "wb")
        self._hash = hashlib.sha256()
        self._batch: list[bytes] = []
        self._batched = 0
        self.size = 0

    async def write(self, data: bytes) -> None:
        """Queue `data` (bytes are kept by reference, not copied); flush a full batch."""
        self._batch.append(bytes(data))
        self._batched += len(data)
        self.size += len(data)
        if self._batched >= WRITE_BUFFER_BYTES:
            await self._flush()

    async def _flush(self) -> None:
        if not self._batch:
            return
        batch, self._batch, self._batched = self._batch, [], 0
        await anyio.to_thread.run_sync(self._write_batch, batch)

    def _write_batch(self, batch: list[bytes]) -> None:
        for chunk in batch:
            self._hash.update(chunk)
        self._handle.writelines(batch)

    async def finish(self) -> str:
        """Flush, make durable, close; the hex SHA-256 of everything written."""
        await self._flush()

        def close() -> None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._handle.close()

        await anyio.to_thread.run_sync(close)
        return self._hash.hexdigest()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self._handle.close()
        self.path.unlink(missing_ok=True)


class BodyReader:
    """The request body chunk by chunk, within the size limit and the time limits."""

    def __init__(self, stream: AsyncIterator[bytes], limits: UploadLimits) -> None:
        self._stream = stream
        self._limits = limits
        self._deadline = time.monotonic() + limits.max_upload_seconds
        self.received = 0

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            chunk = await self._next()
            if chunk is None:
                return
            if not chunk:
                continue
            self.received += len(chunk)
            if self.received > self._limits.max_upload_bytes:
                raise PayloadTooLarge(
                    f"the upload is larger than the limit of {self._limits.max_upload_bytes} bytes"
                )
            yield chunk

    async def _next(self) -> bytes | None:
        remaining = self._deadline - time.monotonic()
        wait = min(self._limits.idle_timeout_seconds, remaining)
        if wait <= 0:
            raise RequestTimeout(
                f"the upload took longer than {self._limits.max_upload_seconds:g} seconds"
            )
        try:
            async with asyncio.timeout(wait):
                return await anext(self._stream)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise RequestTimeout(
                "the client sent nothing for too long or the upload took too long"
            ) from None
        except ClientDisconnect:
            raise ClientGone("the client disconnected before the upload was complete") from None

    async def drain(self, limit: int) -> None:
        """Read (and drop) a little more so the client gets to read our answer."""
        drained = 0
        with contextlib.suppress(Exception):
            async with asyncio.timeout(DRAIN_SECONDS):
                while drained < limit:
                    chunk = await anext(self._stream)
                    drained += len(chunk)


FilenameCheck = Callable[[str], object]


async def receive_raw(
    stream: AsyncIterator[bytes], *, filename: str, limits: UploadLimits, upload_dir: Path
) -> ReceivedUpload:
    """The body is the package itself (`Content-Type: application/octet-stream`)."""
    reader = BodyReader(stream, limits)
    temp = TempFile(upload_dir)
    try:
        async for chunk in reader.chunks():
            await temp.write(chunk)
        digest = await temp.finish()
    except BaseException as error:
        temp.discard()
        if isinstance(error, PayloadTooLarge):
            await reader.drain(limits.reject_drain_bytes)
        raise
    return ReceivedUpload(temp.path, filename, temp.size, digest)


async def receive_multipart(
    stream: AsyncIterator[bytes],
    *,
    content_type: str,
    check_filename: FilenameCheck,
    limits: UploadLimits,
    upload_dir: Path,
) -> ReceivedUpload:
    """A form with one file part named `file` or `data` (Octopus's push), plus small fields."""
    boundary = _boundary(content_type)
    reader = BodyReader(stream, limits)
    form = _FormState(upload_dir)
    parser = MultipartParser(boundary, cast(Any, form.callbacks()))
    try:
        async for chunk in reader.chunks():
            try:
                parser.write(chunk)
            except FormParserError as error:
                raise Invalid(f"the multipart body is malformed: {error}") from None
            form.raise_problem()
            if form.filename is not None and not form.filename_checked:
                check_filename(form.filename)
                form.filename_checked = True
            await form.flush()
        upload = await form.complete()
    except BaseException as error:
        form.discard()
        if isinstance(error, PayloadTooLarge | Invalid):
            await reader.drain(limits.reject_drain_bytes)
        raise
    return upload


def _boundary(content_type: str) -> bytes:
    _, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if not boundary:
        raise Invalid("a multipart/form-data body needs a boundary in its Content-Type")
    return boundary


class _FormState:
    """Callbacks of the streaming multipart parser: sync, so they only record; the async
    loop writes what they collected after each chunk."""

    def __init__(self, upload_dir: Path) -> None:
        self._upload_dir = upload_dir
        self._header_name = bytearray()
        self._header_value = bytearray()
        self._headers: dict[str, str] = {}
        self._part: str | None = None
        self._field_value = bytearray()
        self._pending: list[bytes] = []
        self._parts = 0
        self._problem: str | None = None
        self.ended = False
        self.file: TempFile | None = None
        self.file_ended = False
        self.filename: str | None = None
        self.filename_checked = False
        self.fields: dict[str, str] = {}

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
            "on_end": self._on_end,
        }

    def _on_part_begin(self) -> None:
        self._parts += 1
        if self._parts > MAX_PARTS:
            self._problem = f"a push form has at most {MAX_PARTS} parts"
        self._headers = {}
        self._part = None
        self._field_value.clear()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _on_header_end(self) -> None:
        name = self._header_name.decode("latin-1").strip().lower()
        self._headers[name] = self._header_value.decode("latin-1").strip()
        self._header_name.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("latin-1")
        filename = options.get(b"filename")
        if name in FILE_FIELDS or filename is not None:
            if self.file is not None:
                self._problem = "a push carries exactly one package file"
                return
            self._part = "file"
            self.filename = _basename(filename.decode("utf-8", "replace") if filename else "")
            self.file = TempFile(self._upload_dir)
        else:
            self._part = name

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part == "file":
            self._pending.append(data[start:end])
            return
        self._field_value += data[start:end]
        if len(self._field_value) > MAX_FIELD_BYTES:
            self._problem = f"form field {self._part!r} is longer than {MAX_FIELD_BYTES} bytes"

    def _on_part_end(self) -> None:
        if self._part == "file":
            self.file_ended = True
        elif self._part:
            self.fields[self._part] = self._field_value.decode("utf-8", "replace")
        self._part = None

    def _on_end(self) -> None:
        self.ended = True

    def raise_problem(self) -> None:
        if self._problem is not None:
            raise Invalid(self._problem)

    async def flush(self) -> None:
        if self._pending and self.file is not None:
            data = b"".join(self._pending)
            self._pending.clear()
            await self.file.write(data)

    async def complete(self) -> ReceivedUpload:
        await self.flush()
        if self.file is None or self.filename is None:
            raise Invalid("the form has no package file (a part named 'file' or 'data')")
        if not (self.ended and self.file_ended):
            raise Invalid("the multipart body ended before the package file did")
        if not self.filename:
            raise Invalid("the package file part has no file name")
        digest = await self.file.finish()
        return ReceivedUpload(self.file.path, self.filename, self.file.size, digest, self.fields)

    def discard(self) -> None:
        if self.file is not None:
            self.file.discard()


def _basename(filename: str) -> str:
    """Browsers and curl send a base name; anything path-like keeps only its last part."""
    return filename.replace("\\", "/").rsplit("/", 1)[-1].strip()


def sweep_stale_uploads(upload_dir: Path, older_than_seconds: float) -> int:
    """Delete temporary files a killed process left behind (never a live upload: those are
    younger than the longest allowed upload)."""
    if not upload_dir.is_dir():
        return 0
    cutoff = time.time() - older_than_seconds
    removed = 0
    for path in upload_dir.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
    return removed
