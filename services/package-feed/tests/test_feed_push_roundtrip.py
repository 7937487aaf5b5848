"""Push → list → download is byte-identical, on the filesystem and on real S3 (SeaweedFS)."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from cephalo_common.embedded import free_port
from cephalo_common.testing import running
from cephalo_feed.app import create_app
from cephalo_feed.db.models import Blob
from cephalo_feed.runtime import FEED_EXTRA, Feed
from cephalo_feed.settings import FeedSettings
from cephalo_feed.storage import blob_key

FORMATS = [".zip", ".tar.gz", ".nupkg"]


def files() -> dict[str, bytes]:
    """Random content, so each test stores a blob of its own."""
    return {
        "app/run.sh": b"#!/bin/sh\necho deployed\n",
        "app/data.bin": os.urandom(200_000),
        "app/empty/": b"",
    }


async def roundtrip(client: httpx.AsyncClient, archives: type, extension: str) -> None:
    space = uuid.uuid4()
    data = archives.of_format(extension, files())
    filename = f"Acme.Web.1.2.3{extension}"
    pushed = await client.post(
        f"/api/v1/spaces/{space}/packages", files={"file": (filename, data, "application/zip")}
    )
    assert pushed.status_code == 201, pushed.text
    body = pushed.json()
    assert (body["package_id"], body["version"], body["extension"]) == (
        "Acme.Web",
        "1.2.3",
        extension,
    )
    assert body["size_bytes"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert body["filename"] == filename

    listed = (await client.get(f"/api/v1/spaces/{space}/packages")).json()
    assert [item["id"] for item in listed] == [body["id"]]

    download = await client.get(body["content_path"])
    assert download.status_code == 200
    assert download.content == data
    assert download.headers["content-length"] == str(len(data))
    assert download.headers["etag"] == f'"{body["sha256"]}"'


@pytest.mark.parametrize("extension", FORMATS)
async def test_a_pushed_package_downloads_byte_identical_from_the_filesystem(
    client: httpx.AsyncClient, archives: type, extension: str
) -> None:
    await roundtrip(client, archives, extension)


@pytest.mark.parametrize("extension", FORMATS)
async def test_a_pushed_package_downloads_byte_identical_from_s3(
    s3_client: httpx.AsyncClient, archives: type, extension: str
) -> None:
    await roundtrip(s3_client, archives, extension)


async def test_a_large_package_goes_to_s3_in_parts_and_comes_back_whole(
    s3_client: httpx.AsyncClient, archives: type
) -> None:
    space = uuid.uuid4()
    data = archives.zip({"big.bin": os.urandom(11 * 1024 * 1024)}, compression=0)
    pushed = await s3_client.post(
        f"/api/v1/spaces/{space}/packages",
        params={"filename": "Acme.Big.1.0.0.zip"},
        content=data,
    )
    assert pushed.status_code == 201, pushed.text
    download = await s3_client.get(pushed.json()["content_path"])
    assert hashlib.sha256(download.content).hexdigest() == hashlib.sha256(data).hexdigest()
    partial = await s3_client.get(
        pushed.json()["content_path"], headers={"Range": "bytes=6000000-6000099"}
    )
    assert partial.status_code == 206
    assert partial.content == data[6_000_000:6_000_100]


async def test_the_octopus_raw_endpoint_takes_the_data_field(
    client: httpx.AsyncClient, archives: type
) -> None:
    """`curl -F "data=@Demo.1.0.0.zip" …/packages/raw`, as Octopus documents it."""
    space = uuid.uuid4()
    data = archives.zip(files())
    response = await client.post(
        f"/api/v1/spaces/{space}/packages/raw",
        files={"data": ("Demo.1.0.0.zip", data, "application/octet-stream")},
    )
    assert response.status_code == 201, response.text
    assert (response.json()["package_id"], response.json()["version"]) == ("Demo", "1.0.0")
    assert response.headers["location"].endswith(response.json()["id"])


async def test_a_raw_body_push_names_the_file_in_the_query(
    client: httpx.AsyncClient, archives: type
) -> None:
    space = uuid.uuid4()
    data = archives.tar(files())
    response = await client.post(
        f"/api/v1/spaces/{space}/packages",
        params={"filename": "Acme.Api.2.0.0-beta.1.tgz"},
        content=data,
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["version"] == "2.0.0-beta.1"


async def test_a_raw_body_without_a_file_name_is_invalid(client: httpx.AsyncClient) -> None:
    response = await client.post(f"/api/v1/spaces/{uuid.uuid4()}/packages", content=b"PK")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.filename"


@pytest.mark.parametrize("name", ["Acme.Web.zip", "Acme.Web.1.0.0.exe", "Acme Web.1.0.0.zip"])
async def test_a_file_name_that_is_not_a_package_name_is_invalid(
    client: httpx.AsyncClient, archives: type, name: str
) -> None:
    response = await client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/packages",
        files={"file": (name, archives.zip(files()), "application/zip")},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["code"] == "filename"


async def test_a_path_in_the_uploaded_file_name_is_reduced_to_its_base_name(
    client: httpx.AsyncClient, archives: type
) -> None:
    response = await client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/packages",
        files={"file": ("../../builds/Acme.1.0.0.zip", archives.zip(files()), "application/zip")},
    )
    assert response.status_code == 201
    assert response.json()["filename"] == "Acme.1.0.0.zip"


async def test_a_form_without_a_package_file_is_invalid(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/packages", files={"notes": ("x.txt", b"hello")}
    )
    assert response.status_code == 422


async def test_pushing_an_existing_version_fails_by_default(
    client: httpx.AsyncClient, archives: type
) -> None:
    space = uuid.uuid4()
    first = await client.post(
        f"/api/v1/spaces/{space}/packages",
        files={"file": ("Acme.1.0.0.zip", archives.zip(files()), "application/zip")},
    )
    assert first.status_code == 201
    again = await client.post(
        f"/api/v1/spaces/{space}/packages",
        files={"file": ("acme.1.0.0.0.zip", archives.zip(files()), "application/zip")},
    )
    assert again.status_code == 409
    assert "OverwriteExisting" in again.json()["detail"]


async def test_ignore_if_exists_keeps_the_first_version(
    client: httpx.AsyncClient, archives: type
) -> None:
    space = uuid.uuid4()
    original = archives.zip(files())
    first = await client.post(
        f"/api/v1/spaces/{space}/packages",
        files={"file": ("Acme.1.0.0.zip", original, "application/zip")},
    )
    again = await client.post(
        f"/api/v1/spaces/{space}/packages",
        params={"overwriteMode": "IgnoreIfExists"},
        files={"file": ("Acme.1.0.0.zip", archives.zip(files()), "application/zip")},
    )
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["sha256"] == hashlib.sha256(original).hexdigest()


@pytest.mark.parametrize(
    "params", [{"overwriteMode": "OverwriteExisting"}, {"replace": "true"}], ids=["mode", "legacy"]
)
async def test_overwrite_replaces_the_bytes_and_collects_the_old_blob(
    client: httpx.AsyncClient, feed: Feed, archives: type, params: dict[str, str]
) -> None:
    space = uuid.uuid4()
    first = await client.post(
        f"/api/v1/spaces/{space}/packages/raw",
        files={"file": ("Acme.1.0.0.zip", archives.zip(files()), "application/zip")},
    )
    replacement = archives.zip(files())
    second = await client.post(
        f"/api/v1/spaces/{space}/packages/raw",
        params=params,
        files={"file": ("Acme.1.0.0.zip", replacement, "application/zip")},
    )
    assert second.status_code == 201, second.text
    assert second.json()["id"] == first.json()["id"]
    assert (await client.get(second.json()["content_path"])).content == replacement
    old_key = blob_key(first.json()["sha256"])
    assert not await feed.store.exists(old_key)


async def test_an_unknown_overwrite_mode_is_invalid_before_the_body_is_read(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/packages",
        params={"overwriteMode": "Sometimes", "filename": "Acme.1.0.0.zip"},
        content=b"x",
    )
    assert response.status_code == 422


async def test_identical_content_is_stored_once(
    client: httpx.AsyncClient, feed_app: FastAPI, archives: type
) -> None:
    data = archives.zip(files())
    digest = hashlib.sha256(data).hexdigest()
    for space in (uuid.uuid4(), uuid.uuid4()):
        response = await client.post(
            f"/api/v1/spaces/{space}/packages",
            files={"file": ("Acme.Shared.1.0.0.zip", data, "application/zip")},
        )
        assert response.status_code == 201
    async with feed_app.state.runtime.sessionmaker() as session:
        blobs = (await session.execute(select(Blob).where(Blob.sha256 == digest))).scalars().all()
    assert len(blobs) == 1
    feed: Feed = feed_app.state.runtime.extras[FEED_EXTRA]
    stored = Path(feed.settings.storage_dir) / blob_key(digest)
    assert stored.is_file() and stored.read_bytes() == data


async def test_nupkg_release_notes_come_from_the_nuspec(
    client: httpx.AsyncClient, archives: type
) -> None:
    space = uuid.uuid4()
    data = archives.nupkg("Acme.Lib", "3.1.0", files(), notes="Fixed the flux capacitor.")
    response = await client.post(
        f"/api/v1/spaces/{space}/packages",
        files={"file": ("Acme.Lib.3.1.0.nupkg", data, "application/octet-stream")},
    )
    assert response.status_code == 201, response.text
    assert response.json()["release_notes"] == "Fixed the flux capacitor."


async def test_release_notes_can_be_given_with_the_push(
    client: httpx.AsyncClient, archives: type
) -> None:
    response = await client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/packages",
        data={"release_notes": "First cut."},
        files={"file": ("Acme.1.0.0.zip", archives.zip(files()), "application/zip")},
    )
    assert response.status_code == 201
    assert response.json()["release_notes"] == "First cut."


async def test_an_empty_file_is_invalid(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/packages",
        files={"file": ("Acme.1.0.0.zip", b"", "application/zip")},
    )
    assert response.status_code == 422


async def test_a_push_while_the_store_is_down_is_503_and_leaves_nothing(
    feed_settings: FeedSettings, seaweedfs: Any, archives: type
) -> None:
    down = seaweedfs.settings(prefix="down/").model_copy(
        update={"endpoint_url": f"http://127.0.0.1:{free_port()}", "connect_timeout_seconds": 0.5}
    )
    app = create_app(feed_settings.model_copy(update={"storage_backend": "s3", "s3": down}))
    space = uuid.uuid4()
    async with running(app, ready=False) as client:
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["storage"].startswith("unavailable")
        response = await client.post(
            f"/api/v1/spaces/{space}/packages",
            files={"file": ("Acme.Down.1.0.0.zip", archives.zip(files()), "application/zip")},
        )
        assert response.status_code == 503, response.text
        assert (await client.get(f"/api/v1/spaces/{space}/packages")).json() == []
    assert list(feed_settings.upload_dir.glob("*")) == []
