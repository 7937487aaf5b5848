"""package-feed's read API over rows written through the repository, on real Postgres."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import httpx
from fastapi import FastAPI

from cephalo_common.db.session import unit_of_work
from cephalo_common.ids import utc_now
from cephalo_common.packages import normalize_version
from cephalo_feed.db.models import Package
from cephalo_feed.db.repositories import Repositories
from cephalo_feed.storage import blob_key


async def publish(
    app: FastAPI, space_id: uuid.UUID, package_id: str, version: str, *, age_minutes: int = 0
) -> Package:
    """Write one package row the way the upload path will: repository, then commit."""
    content = f"{space_id}/{package_id}.{version}".encode()
    sha256 = hashlib.sha256(content).hexdigest()
    async with unit_of_work(app.state.runtime.sessionmaker) as session:
        repos = Repositories(session)
        await repos.blobs.touch(sha256, len(content), blob_key(sha256))
        return await repos.packages.add(
            Package(
                space_id=space_id,
                package_id=package_id,
                version=version,
                version_key=normalize_version(version),
                extension=".zip",
                size_bytes=len(content),
                sha256=sha256,
                storage_key=blob_key(sha256),
                published_at=utc_now() - timedelta(minutes=age_minutes),
            )
        )


def packages_url(space_id: uuid.UUID) -> str:
    return f"/api/v1/spaces/{space_id}/packages"


async def test_a_new_space_has_no_packages(client: httpx.AsyncClient) -> None:
    response = await client.get(packages_url(uuid.uuid4()))
    assert response.status_code == 200
    assert response.json() == []


async def test_published_versions_are_listed_newest_first(
    client: httpx.AsyncClient, feed_app: FastAPI
) -> None:
    space = uuid.uuid4()
    older = await publish(feed_app, space, "Acme.Web", "1.0.0", age_minutes=5)
    newer = await publish(feed_app, space, "Acme.Web", "1.1.0")
    listed = (await client.get(packages_url(space))).json()
    assert [item["id"] for item in listed] == [str(newer.id), str(older.id)]
    assert "storage_key" not in listed[0]


async def test_the_package_id_filter_ignores_case(
    client: httpx.AsyncClient, feed_app: FastAPI
) -> None:
    space = uuid.uuid4()
    web = await publish(feed_app, space, "Acme.Web", "2.0.0")
    await publish(feed_app, space, "Acme.Worker", "2.0.0")
    listed = (await client.get(packages_url(space), params={"package_id": "acme.web"})).json()
    assert [item["id"] for item in listed] == [str(web.id)]


async def test_limit_and_offset_page_through_versions(
    client: httpx.AsyncClient, feed_app: FastAPI
) -> None:
    space = uuid.uuid4()
    for minor in range(3):
        await publish(feed_app, space, "Acme.Api", f"1.{minor}.0", age_minutes=10 - minor)
    page = (await client.get(packages_url(space), params={"limit": 1, "offset": 1})).json()
    assert [item["version"] for item in page] == ["1.1.0"]


async def test_a_package_is_found_by_id_in_its_space(
    client: httpx.AsyncClient, feed_app: FastAPI
) -> None:
    space = uuid.uuid4()
    package = await publish(feed_app, space, "Acme.Web", "3.0.0")
    response = await client.get(f"{packages_url(space)}/{package.id}")
    assert response.status_code == 200
    body = response.json()
    assert (body["package_id"], body["version"]) == ("Acme.Web", "3.0.0")
    assert body["sha256"] == package.sha256 and body["size_bytes"] == package.size_bytes


async def test_a_package_from_another_space_is_not_found(
    client: httpx.AsyncClient, feed_app: FastAPI
) -> None:
    package = await publish(feed_app, uuid.uuid4(), "Acme.Web", "1.0.0")
    response = await client.get(f"{packages_url(uuid.uuid4())}/{package.id}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Not found"


async def test_an_unknown_package_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{packages_url(uuid.uuid4())}/{uuid.uuid4()}")
    assert response.status_code == 404


async def test_a_malformed_id_is_invalid_input(client: httpx.AsyncClient) -> None:
    response = await client.get(f"{packages_url(uuid.uuid4())}/not-a-uuid")
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.id"


async def test_a_malformed_space_id_is_invalid_input(client: httpx.AsyncClient) -> None:
    response = await client.get(packages_url(uuid.uuid4()).replace("spaces/", "spaces/default"))
    assert response.status_code == 422


async def test_an_out_of_range_limit_is_invalid_input(client: httpx.AsyncClient) -> None:
    response = await client.get(packages_url(uuid.uuid4()), params={"limit": 0})
    assert response.status_code == 422


async def test_probes_answer_with_real_postgres_and_nats(client: httpx.AsyncClient) -> None:
    assert (await client.get("/livez")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"database": "ok", "nats": "ok", "storage": "ok"}
