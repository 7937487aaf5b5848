"""Blobs in an S3 bucket through aiobotocore; big blobs go up in parts of bounded size."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio.to_thread
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from cephalo_feed.settings import S3Settings
from cephalo_feed.storage import CHUNK_BYTES, BlobMissing, StorageUnavailable

MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def _missing(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in MISSING_CODES


@contextlib.asynccontextmanager
async def _reachable(action: str) -> AsyncIterator[None]:
    """S3 trouble (other than a missing key, handled by the caller) is `StorageUnavailable`."""
    try:
        yield
    except (BlobMissing, StorageUnavailable):
        raise
    except ClientError as error:
        if _missing(error):
            raise
        raise StorageUnavailable(f"S3 {action} failed: {error}") from error
    except (BotoCoreError, OSError, TimeoutError) as error:
        raise StorageUnavailable(f"S3 {action} failed: {error!r}") from error


class S3Stream:
    def __init__(self, body: Any) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._body.iter_chunks(CHUNK_BYTES):
                yield chunk
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        self._body.close()


class S3BlobStore:
    name = "s3"

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        self._stack = contextlib.AsyncExitStack()
        self._client: Any = None

    async def start(self) -> None:
        settings = self.settings
        config = AioConfig(
            s3={"addressing_style": settings.addressing_style},
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            retries={"max_attempts": 3, "mode": "standard"},
        )
        self._client = await self._stack.enter_async_context(
            get_session().create_client(
                "s3",
                endpoint_url=settings.endpoint_url,
                region_name=settings.region,
                aws_access_key_id=_secret(settings.access_key_id),
                aws_secret_access_key=_secret(settings.secret_access_key),
                config=config,
            )
        )

    def _key(self, key: str) -> str:
        return self.settings.prefix + key

    async def exists(self, key: str) -> bool:
        try:
            async with _reachable("HeadObject"):
                await self._client.head_object(Bucket=self.settings.bucket, Key=self._key(key))
        except ClientError:
            return False
        return True

    async def put_file(self, key: str, path: Path, size: int) -> None:
        async with _reachable("upload"):
            if size < self.settings.multipart_threshold_bytes:
                body = await anyio.to_thread.run_sync(path.read_bytes)
                await self._client.put_object(
                    Bucket=self.settings.bucket, Key=self._key(key), Body=body
                )
                return
            await self._put_in_parts(self._key(key), path)

    async def _put_in_parts(self, key: str, path: Path) -> None:
        bucket = self.settings.bucket
        upload = await self._client.create_multipart_upload(Bucket=bucket, Key=key)
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []
        try:
            with path.open("rb") as reader:
                while chunk := await anyio.to_thread.run_sync(
                    reader.read, self.settings.part_size_bytes
                ):
                    number = len(parts) + 1
                    answer = await self._client.upload_part(
                        Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=chunk
                    )
                    parts.append({"ETag": answer["ETag"], "PartNumber": number})
                    del chunk
            await self._client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException:
            with contextlib.suppress(Exception):
                await self._client.abort_multipart_upload(
                    Bucket=bucket, Key=key, UploadId=upload_id
                )
            raise

    async def open(self, key: str, start: int, length: int) -> S3Stream:
        try:
            async with _reachable("GetObject"):
                answer = await self._client.get_object(
                    Bucket=self.settings.bucket,
                    Key=self._key(key),
                    Range=f"bytes={start}-{start + max(length, 1) - 1}",
                )
        except ClientError as error:
            raise BlobMissing(f"blob {key} is missing") from error
        return S3Stream(answer["Body"])

    async def delete(self, key: str) -> None:
        async with _reachable("DeleteObject"):
            await self._client.delete_object(Bucket=self.settings.bucket, Key=self._key(key))

    async def check(self) -> None:
        async with _reachable("HeadBucket"):
            await self._client.head_bucket(Bucket=self.settings.bucket)

    async def aclose(self) -> None:
        await self._stack.aclose()


def _secret(value: Any) -> str | None:
    return None if value is None else str(value.get_secret_value())
