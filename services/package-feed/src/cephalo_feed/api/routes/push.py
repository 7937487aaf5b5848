"""Pushing packages: streamed, hashed, inspected, stored, then committed with its event.

`POST /packages` is Cephalo's push (multipart or raw body); `POST /packages/raw` is the
Octopus build-server endpoint (`curl -F "data=@Acme.1.0.0.zip" …/api/{space}/packages/raw`),
reached through the gateway so existing scripts keep working.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from fastapi.responses import JSONResponse

from cephalo_common.errors import Invalid
from cephalo_common.packages import PackageFilename, parse_package_filename
from cephalo_feed.api.routes.common import collect_blob_later
from cephalo_feed.deps import FeedDep, ReposDep
from cephalo_feed.domain.archives import ArchiveRejected, ArchiveSummary, inspect_archive
from cephalo_feed.domain.push import OverwriteMode, Upload, overwrite_mode_of, push_package
from cephalo_feed.errors import PayloadTooLarge
from cephalo_feed.runtime import Feed
from cephalo_feed.schemas.packages import PackageVersionDetail
from cephalo_feed.uploads import ReceivedUpload, receive_multipart, receive_raw

router = APIRouter(prefix="/api/v1/spaces/{space_id}/packages", tags=["packages"])

RESPONSES: dict[int | str, dict[str, str]] = {
    200: {"description": "IgnoreIfExists: the version already existed and was kept"},
    408: {"description": "The client stalled or the upload took too long"},
    409: {"description": "FailIfExists: the version already exists"},
    413: {"description": "The upload is larger than the limit"},
    422: {"description": "Not a valid package name, or an unsafe or invalid archive"},
}


def package_name(filename: str) -> PackageFilename:
    try:
        return parse_package_filename(filename)
    except ValueError as error:
        raise Invalid(
            str(error), errors=[{"field": "file", "message": str(error), "code": "filename"}]
        ) from None


def _refuse_declared_oversize(request: Request, feed: Feed) -> None:
    """413 before a byte of the body is read, when the client says how big it is."""
    declared = request.headers.get("content-length")
    limit = feed.settings.limits.max_upload_bytes
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the upload is {declared} bytes; the limit is {limit}")


async def _receive(request: Request, feed: Feed, filename: str | None) -> ReceivedUpload:
    settings = feed.settings
    content_type = request.headers.get("content-type", "")
    if content_type.lower().startswith("multipart/form-data"):
        return await receive_multipart(
            request.stream(),
            content_type=content_type,
            check_filename=package_name,
            limits=settings.limits,
            upload_dir=settings.upload_dir,
        )
    if not filename:
        raise Invalid(
            "a raw upload needs ?filename=<PackageId>.<Version><extension>",
            errors=[{"field": "query.filename", "message": "required for a raw body"}],
        )
    package_name(filename)
    return await receive_raw(
        request.stream(), filename=filename, limits=settings.limits, upload_dir=settings.upload_dir
    )


async def _inspect(
    feed: Feed, received: ReceivedUpload, identity: PackageFilename
) -> ArchiveSummary:
    if received.size == 0:
        raise Invalid("the package file is empty")
    try:
        return await anyio.to_thread.run_sync(
            inspect_archive, received.path, identity.extension, feed.archive_limits
        )
    except ArchiveRejected as error:
        raise Invalid(
            f"the archive was refused: {error.reason}",
            errors=[{"field": "file", "message": error.reason, "code": "unsafe-archive"}],
        ) from None


def _release_notes(
    feed: Feed, received: ReceivedUpload, given: str | None, found: str | None
) -> str:
    notes = given or received.fields.get("release_notes") or received.fields.get("releaseNotes")
    notes = notes or found or ""
    if len(notes.encode()) > feed.settings.limits.max_release_notes_bytes:
        raise Invalid("the release notes are too long")
    return notes


@router.post("", status_code=201, response_model=PackageVersionDetail, responses=RESPONSES)
@router.post("/raw", status_code=201, response_model=PackageVersionDetail, responses=RESPONSES)
async def push(
    space_id: uuid.UUID,
    request: Request,
    repos: ReposDep,
    feed: FeedDep,
    background: BackgroundTasks,
    overwrite_mode: Annotated[OverwriteMode | None, Query(alias="overwriteMode")] = None,
    overwrite_mode_snake: Annotated[OverwriteMode | None, Query(alias="overwrite_mode")] = None,
    replace: Annotated[bool | None, Query(description="Legacy: true = OverwriteExisting")] = None,
    filename: Annotated[str | None, Query(max_length=255)] = None,
    release_notes: Annotated[str | None, Query(max_length=100_000)] = None,
) -> Response:
    """Push a package: a multipart form with a `file` (or `data`) part, or the raw archive
    as the body with `?filename=`. `overwriteMode` is FailIfExists (default),
    OverwriteExisting or IgnoreIfExists."""
    _refuse_declared_oversize(request, feed)
    mode = overwrite_mode_of(overwrite_mode or overwrite_mode_snake, replace)
    received = await _receive(request, feed, filename)
    try:
        identity = package_name(received.filename)
        summary = await _inspect(feed, received, identity)
        upload = Upload(
            space_id=space_id,
            identity=identity,
            path=received.path,
            size=received.size,
            sha256=received.sha256,
            release_notes=_release_notes(feed, received, release_notes, summary.release_notes),
        )
        outcome = await push_package(
            repos, feed.store, upload, mode, unit_of_work=feed.unit_of_work
        )
    finally:
        received.discard()
    if outcome.replaced_sha256 is not None:
        background.add_task(collect_blob_later, feed, outcome.replaced_sha256)
    body = PackageVersionDetail.model_validate(outcome.package)
    return JSONResponse(
        body.model_dump(mode="json"),
        status_code=201 if outcome.stored else 200,
        headers={"Location": f"/api/v1/spaces/{space_id}/packages/{outcome.package.id}"},
        background=background,
    )
