"""Blobs as files under a root directory; writes land by atomic rename."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

from cephalo_feed.storage import CHUNK_BYTES, BlobMissing, StorageUnavailable


class FileStream:
    """Reads a byte range of an open file in chunks, off the event loop."""

    def __init__(self, handle: BinaryIO, length: int) -> None:
        self._handle = handle
        self._remaining = length

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while self._remaining > 0:
                chunk = await anyio.to_thread.run_sync(
                    self._handle.read, min(CHUNK_BYTES, self._remaining)
                )
                if not chunk:
                    raise BlobMissing("the blob is shorter than its recorded size")
                self._remaining -= len(chunk)
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        self._handle.close()


class FilesystemBlobStore:
    name = "filesystem"

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / key

    async def exists(self, key: str) -> bool:
        return await anyio.to_thread.run_sync(self._path(key).is_file)

    async def put_file(self, key: str, path: Path, size: int) -> None:
        try:
            await anyio.to_thread.run_sync(self._put, self._path(key), path)
        except OSError as error:
            raise StorageUnavailable(f"cannot store blob {key}: {error}") from error

    @staticmethod
    def _put(target: Path, source: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(source, target)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            try:
                with source.open("rb") as reader, partial.open("wb") as writer:
                    shutil.copyfileobj(reader, writer, CHUNK_BYTES)
                    writer.flush()
                    os.fsync(writer.fileno())
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
        _fsync_directory(target.parent)

    async def open(self, key: str, start: int, length: int) -> FileStream:
        def opened() -> BinaryIO:
            handle = self._path(key).open("rb")
            handle.seek(start)
            return handle

        try:
            handle = await anyio.to_thread.run_sync(opened)
        except FileNotFoundError as error:
            raise BlobMissing(f"blob {key} is missing") from error
        except OSError as error:
            raise StorageUnavailable(f"cannot read blob {key}: {error}") from error
        return FileStream(handle, length)

    async def delete(self, key: str) -> None:
        await anyio.to_thread.run_sync(self._path(key).unlink, True)

    async def check(self) -> None:
        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            if not os.access(self.root, os.W_OK):
                raise RuntimeError(f"{self.root} is not writable")

        await anyio.to_thread.run_sync(probe)

    async def aclose(self) -> None:
        return None


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (a crash must not lose a blob a committed row points to)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
