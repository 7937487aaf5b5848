"""Retention, deletes and blob collection against a scripted release-service."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from cephalo_common.contracts import PACKAGE_DELETED
from cephalo_common.embedded import free_port
from cephalo_feed.app import run_maintenance
from cephalo_feed.clients.release_service import ReleaseServiceReferences
from cephalo_feed.db.models import OutboxEvent, Package
from cephalo_feed.domain.retention import apply_retention, collect_garbage
from cephalo_feed.runtime import Feed
from cephalo_feed.storage import blob_key


async def push_versions(
    client: httpx.AsyncClient, archives: Any, space: uuid.UUID, package_id: str, *versions: str
) -> dict[str, dict[str, Any]]:
    pushed = {}
    for version in versions:
        response = await client.post(
            f"/api/v1/spaces/{space}/packages",
            files={
                "file": (
                    f"{package_id}.{version}.zip",
                    archives.zip({"v": f"{space}{version}".encode()}),
                    "application/zip",
                )
            },
        )
        assert response.status_code == 201, response.text
        pushed[version] = response.json()
    return pushed


async def age(feed: Feed, space: uuid.UUID, days: int, *versions: str) -> None:
    async with feed.unit_of_work() as repos:
        await repos.session.execute(
            update(Package)
            .where(Package.space_id == space, Package.version.in_(versions))
            .values(published_at=func.now() - func.make_interval(0, 0, 0, days))
        )


async def versions_in(client: httpx.AsyncClient, space: uuid.UUID) -> set[str]:
    listed = (await client.get(f"/api/v1/spaces/{space}/packages")).json()
    return {item["version"] for item in listed}


async def deleted_events(feed: Feed, space: uuid.UUID) -> list[OutboxEvent]:
    async with feed.unit_of_work() as repos:
        statement = select(OutboxEvent).where(
            OutboxEvent.subject == PACKAGE_DELETED.subject(str(space))
        )
        return list((await repos.session.execute(statement)).scalars().all())


async def test_retention_deletes_old_versions_no_release_uses_and_keeps_the_rest(
    client: httpx.AsyncClient, feed: Feed, fake_release_service: Any, archives: Any
) -> None:
    space = uuid.uuid4()
    pushed = await push_versions(client, archives, space, "Acme.Retain", "1.0.0", "1.1.0", "2.0.0")
    await age(feed, space, 40, "1.0.0", "1.1.0")
    fake_release_service.answers["acme.retain"] = ["1.0"]

    report = await apply_retention(feed.unit_of_work, feed.references, days=30, batch_size=10)

    assert uuid.UUID(pushed["1.1.0"]["id"]) in report.deleted
    assert await versions_in(client, space) == {"1.0.0", "2.0.0"}
    (event,) = await deleted_events(feed, space)
    assert event.type == "cephalo.feed.package.deleted.v1"
    assert b'"reason":"retention"' in event.payload
    await collect_garbage(feed.unit_of_work, feed.store, grace_seconds=0)
    assert not await feed.store.exists(blob_key(pushed["1.1.0"]["sha256"]))
    assert await feed.store.exists(blob_key(pushed["1.0.0"]["sha256"]))


@pytest.mark.parametrize("answer", [404, 500], ids=["no-route-yet", "server-error"])
async def test_retention_keeps_everything_when_release_service_cannot_say(
    client: httpx.AsyncClient, feed: Feed, fake_release_service: Any, archives: Any, answer: int
) -> None:
    space = uuid.uuid4()
    await push_versions(client, archives, space, "Acme.Unknown", "1.0.0", "1.1.0")
    await age(feed, space, 40, "1.0.0", "1.1.0")
    fake_release_service.answers["acme.unknown"] = answer

    report = await apply_retention(feed.unit_of_work, feed.references, days=30, batch_size=10)

    assert report.kept_unknown >= 2
    assert await versions_in(client, space) == {"1.0.0", "1.1.0"}
    assert await deleted_events(feed, space) == []


async def test_retention_keeps_everything_when_release_service_is_unreachable(
    client: httpx.AsyncClient, feed: Feed, archives: Any
) -> None:
    space = uuid.uuid4()
    await push_versions(client, archives, space, "Acme.Offline", "1.0.0")
    await age(feed, space, 40, "1.0.0")
    unreachable = ReleaseServiceReferences(f"http://127.0.0.1:{free_port()}", timeout_seconds=1)
    try:
        await apply_retention(feed.unit_of_work, unreachable, days=30, batch_size=10)
    finally:
        await unreachable.aclose()
    assert await versions_in(client, space) == {"1.0.0"}


async def test_two_replicas_running_retention_at_once_delete_each_version_once(
    client: httpx.AsyncClient, feed: Feed, fake_release_service: Any, archives: Any
) -> None:
    space = uuid.uuid4()
    versions = [f"1.{minor}.0" for minor in range(8)]
    await push_versions(client, archives, space, "Acme.Race", *versions)
    await age(feed, space, 40, *versions)
    fake_release_service.answers["acme.race"] = []

    first, second = await asyncio.gather(
        apply_retention(feed.unit_of_work, feed.references, days=30, batch_size=2),
        apply_retention(feed.unit_of_work, feed.references, days=30, batch_size=2),
    )

    deleted = first.deleted + second.deleted
    assert len(deleted) == len(set(deleted))
    assert await versions_in(client, space) == set()
    assert len(await deleted_events(feed, space)) == len(versions)


async def test_the_maintenance_loop_applies_retention_when_it_is_enabled(
    client: httpx.AsyncClient, feed: Feed, fake_release_service: Any, archives: Any
) -> None:
    space = uuid.uuid4()
    await push_versions(client, archives, space, "Acme.Loop", "1.0.0")
    await age(feed, space, 10, "1.0.0")
    fake_release_service.answers["acme.loop"] = []
    retention = feed.settings.retention.model_copy(update={"days": 7})
    enabled = dataclasses.replace(
        feed, settings=feed.settings.model_copy(update={"retention": retention})
    )
    await run_maintenance(enabled)
    assert await versions_in(client, space) == set()


async def test_deleting_a_version_a_release_uses_needs_force(
    client: httpx.AsyncClient, feed: Feed, fake_release_service: Any, archives: Any
) -> None:
    space = uuid.uuid4()
    pushed = await push_versions(client, archives, space, "Acme.Used", "1.0.0")
    fake_release_service.answers["acme.used"] = ["1.0.0"]
    path = f"/api/v1/spaces/{space}/packages/Acme.Used/versions/1.0.0"

    refused = await client.delete(path)
    assert refused.status_code == 409
    assert "used by a release" in refused.json()["detail"]

    forced = await client.delete(path, params={"force": "true"})
    assert forced.status_code == 204
    assert (await client.get(path)).status_code == 404
    (event,) = await deleted_events(feed, space)
    assert b'"forced":true' in event.payload and b'"reason":"deleted"' in event.payload
    async with asyncio.timeout(5):
        while await feed.store.exists(blob_key(pushed["1.0.0"]["sha256"])):
            await asyncio.sleep(0.05)


async def test_deleting_needs_force_while_release_service_cannot_report_use(
    client: httpx.AsyncClient, fake_release_service: Any, archives: Any
) -> None:
    space = uuid.uuid4()
    await push_versions(client, archives, space, "Acme.Unsure", "1.0.0")
    path = f"/api/v1/spaces/{space}/packages/Acme.Unsure/versions/1.0.0"
    fake_release_service.answers["acme.unsure"] = 404
    assert (await client.delete(path)).status_code == 409
    fake_release_service.answers["acme.unsure"] = 503
    assert (await client.delete(path)).status_code == 503
    assert await versions_in(client, space) == {"1.0.0"}


async def test_deleting_an_unused_version_by_id_removes_it(
    client: httpx.AsyncClient, fake_release_service: Any, archives: Any
) -> None:
    space = uuid.uuid4()
    pushed = await push_versions(client, archives, space, "Acme.Free", "1.0.0", "1.1.0")
    fake_release_service.answers["acme.free"] = ["1.1.0"]
    response = await client.delete(f"/api/v1/spaces/{space}/packages/{pushed['1.0.0']['id']}")
    assert response.status_code == 204
    assert await versions_in(client, space) == {"1.1.0"}


async def test_deleting_in_another_space_is_not_found(
    client: httpx.AsyncClient, archives: Any
) -> None:
    pushed = await push_versions(client, archives, uuid.uuid4(), "Acme.Mine", "1.0.0")
    other = uuid.uuid4()
    by_id = await client.delete(f"/api/v1/spaces/{other}/packages/{pushed['1.0.0']['id']}")
    by_name = await client.delete(f"/api/v1/spaces/{other}/packages/Acme.Mine/versions/1.0.0")
    assert (by_id.status_code, by_name.status_code) == (404, 404)


async def test_a_blob_left_by_a_crashed_push_is_collected_after_the_grace_period(
    feed: Feed, tmp_path: Any
) -> None:
    data = uuid.uuid4().bytes * 100
    digest = hashlib.sha256(data).hexdigest()
    orphan = tmp_path / "orphan"
    orphan.write_bytes(data)
    async with feed.unit_of_work() as repos:
        await repos.blobs.touch(digest, len(data), blob_key(digest))
    await feed.store.put_file(blob_key(digest), orphan, len(data))

    await collect_garbage(feed.unit_of_work, feed.store, grace_seconds=3600, sha256s=[digest])
    assert await feed.store.exists(blob_key(digest))
    await collect_garbage(feed.unit_of_work, feed.store, grace_seconds=0, sha256s=[digest])
    assert not await feed.store.exists(blob_key(digest))


async def test_the_collector_never_removes_a_blob_a_version_uses(
    client: httpx.AsyncClient, feed: Feed, archives: Any
) -> None:
    pushed = await push_versions(client, archives, uuid.uuid4(), "Acme.Kept", "1.0.0")
    await collect_garbage(feed.unit_of_work, feed.store, grace_seconds=0)
    assert await feed.store.exists(blob_key(pushed["1.0.0"]["sha256"]))
    download = await client.get(pushed["1.0.0"]["content_path"])
    assert download.status_code == 200
