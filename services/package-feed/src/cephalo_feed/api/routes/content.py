"""Downloading package bytes: ranges, validators, and signed links for agents."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import StreamingResponse

from cephalo_common.errors import Forbidden, Unavailable
from cephalo_common.http.problems import problem
from cephalo_feed.db.models import Package
from cephalo_feed.deps import FeedDep, ReposDep
from cephalo_feed.domain.downloads import (
    ByteRange,
    Precondition,
    Unsatisfiable,
    content_disposition,
    etag_for,
    evaluate_preconditions,
    http_date,
    if_range_allows,
    parse_range,
)
from cephalo_feed.domain.packages import get_version
from cephalo_feed.domain.signing import sign_download, verify_download
from cephalo_feed.errors import PreconditionFailed
from cephalo_feed.runtime import Feed
from cephalo_feed.schemas.packages import DownloadUrl, DownloadUrlRequest
from cephalo_feed.storage import BlobMissing, StorageUnavailable

router = APIRouter(prefix="/api/v1/spaces/{space_id}/packages", tags=["packages"])

PackageIdPath = Annotated[str, Path(min_length=1, max_length=100)]
VersionPath = Annotated[str, Path(min_length=1, max_length=100)]
MEDIA_TYPES = {
    ".zip": "application/zip",
    ".jar": "application/java-archive",
    ".war": "application/java-archive",
    ".ear": "application/java-archive",
    ".rar": "application/java-archive",
    ".nupkg": "application/octet-stream",
    ".tar": "application/x-tar",
    ".tar.gz": "application/gzip",
    ".tgz": "application/gzip",
}


def _check_signature(
    feed: Feed, package: Package, expires: int | None, signature: str | None
) -> None:
    if expires is None and signature is None:
        return
    valid = (
        expires is not None
        and signature is not None
        and verify_download(
            feed.settings.download_url_secret.get_secret_value().encode(),
            space_id=package.space_id,
            package_id_key=package.package_id_key,
            version_key=package.version_key,
            sha256=package.sha256,
            expires=expires,
            signature=signature,
            now=time.time(),
        )
    )
    if not valid:
        raise Forbidden("the download link is invalid or has expired")


def _headers(package: Package) -> dict[str, str]:
    return {
        "ETag": etag_for(package.sha256),
        "Last-Modified": http_date(package.published_at),
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-cache",
    }


@router.get("/{package_id}/versions/{version}/content", operation_id="download_package")
@router.head("/{package_id}/versions/{version}/content", operation_id="head_package")
async def content(
    space_id: uuid.UUID,
    package_id: PackageIdPath,
    version: VersionPath,
    request: Request,
    repos: ReposDep,
    feed: FeedDep,
    expires: Annotated[int | None, Query()] = None,
    signature: Annotated[str | None, Query(max_length=128)] = None,
) -> Response:
    """The package file, streamed; `Range` (one range), `If-Range`, `If-None-Match`,
    `If-Match` and the `If-(Un)Modified-Since` pair follow RFC 9110."""
    package = await get_version(repos, space_id, package_id, version)
    _check_signature(feed, package, expires, signature)
    headers = _headers(package)
    outcome = evaluate_preconditions(
        etag=headers["ETag"],
        last_modified=package.published_at,
        if_match=request.headers.get("if-match"),
        if_none_match=request.headers.get("if-none-match"),
        if_modified_since=request.headers.get("if-modified-since"),
        if_unmodified_since=request.headers.get("if-unmodified-since"),
    )
    if outcome is Precondition.NOT_MODIFIED:
        return Response(status_code=304, headers=headers)
    if outcome is Precondition.FAILED:
        raise PreconditionFailed("the package version does not match the request's condition")
    size = package.size_bytes
    wanted: ByteRange | Unsatisfiable | None = None
    if request.method == "GET" and if_range_allows(
        request.headers.get("if-range"), etag=headers["ETag"], last_modified=package.published_at
    ):
        wanted = parse_range(request.headers.get("range"), size)
    if wanted is Unsatisfiable.RANGE:
        refused = problem(
            416,
            "Range not satisfiable",
            f"the package is {size} bytes long",
            slug="range-not-satisfiable",
            request=request,
        )
        refused.headers["Content-Range"] = f"bytes */{size}"
        return refused
    filename = f"{package.package_id}.{package.version}{package.extension}"
    headers["Content-Disposition"] = content_disposition(filename)
    headers["Content-Type"] = MEDIA_TYPES.get(package.extension, "application/octet-stream")
    start, length, status = 0, size, 200
    if isinstance(wanted, ByteRange):
        start, length, status = wanted.start, wanted.length, 206
        headers["Content-Range"] = wanted.content_range(size)
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers)
    try:
        stream = await feed.store.open(package.storage_key, start, length)
    except BlobMissing as error:
        raise Unavailable(f"the bytes of {filename} are missing from storage") from error
    except StorageUnavailable as error:
        raise Unavailable(f"the package store is unavailable: {error}") from error
    return StreamingResponse(stream, status_code=status, headers=headers)


@router.post("/{package_id}/versions/{version}/download-url")
async def download_url(
    space_id: uuid.UUID,
    package_id: PackageIdPath,
    version: VersionPath,
    repos: ReposDep,
    feed: FeedDep,
    body: DownloadUrlRequest | None = None,
) -> DownloadUrl:
    """A short-lived link to the content that needs no API key (for agents)."""
    package = await get_version(repos, space_id, package_id, version)
    settings = feed.settings
    ttl = body.ttl_seconds if body and body.ttl_seconds else settings.download_url_ttl_seconds
    expires = int(time.time()) + ttl
    signature = sign_download(
        settings.download_url_secret.get_secret_value().encode(),
        space_id=package.space_id,
        package_id_key=package.package_id_key,
        version_key=package.version_key,
        sha256=package.sha256,
        expires=expires,
    )
    path = (
        f"/api/v1/spaces/{space_id}/packages/{quote(package.package_id, safe='')}/versions/"
        f"{quote(package.version, safe='')}/content?expires={expires}&signature={signature}"
    )
    base = (settings.public_base_url or "").rstrip("/")
    return DownloadUrl(
        url=base + path, path=path, expires_at=datetime.fromtimestamp(expires, tz=UTC)
    )
