"""Blob storage behind one small interface: the local filesystem (default) or S3.

Blobs are content-addressed: the key is derived from the SHA-256 of the bytes, so the same
package pushed twice (or under two names) is stored once, and a stored blob never changes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

CHUNK_BYTES = 1024 * 1024
"""One read from a stored blob: each read is a hop to a worker thread and a send to the
client, so a download costs less CPU in fewer, larger reads."""


class BlobMissing(Exception):
    """The row says the blob exists but the store does not have it."""


class StorageUnavailable(Exception):
    """The store cannot be reached or written right now (answered as 503, retryable)."""


class BlobStream(Protocol):
    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def aclose(self) -> None: ...


class BlobStore(Protocol):
    name: str

    async def exists(self, key: str) -> bool: ...

    async def put_file(self, key: str, path: Path, size: int) -> None:
        """Store the file at `path` under `key`; the file may be moved (not copied) there."""

    async def open(self, key: str, start: int, length: int) -> BlobStream:
        """Bytes `[start, start + length)`; raises `BlobMissing` before any byte is sent."""

    async def delete(self, key: str) -> None:
        """Idempotent: deleting a missing blob is not an error."""

    async def check(self) -> None:
        """Readiness: raise when blobs cannot be written or read."""

    async def aclose(self) -> None: ...


def blob_key(sha256: str) -> str:
    """`sha256/ab/cd/abcd…`: two levels of fan-out keep directories small."""
    return f"sha256/{sha256[:2]}/{sha256[2:4]}/{sha256}"
