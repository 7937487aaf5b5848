from __future__ import annotations

import asyncio
import io
import uuid
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cephalo_common.db.migrations import upgrade
from cephalo_common.testing import running, serving
from cephalo_feed.app import create_app as create_feed_app
from cephalo_feed.settings import FeedSettings
from cephalo_release.app import create_app
from cephalo_release.settings import ReleaseSettings

TEST_MASTER_KEY = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
"""base64 of 32 bytes: the master key every release-service test app encrypts with."""


@pytest.fixture(scope="session")
def nats_url(new_nats: Callable[[str], str]) -> str:
    """A NATS of its own (overrides the session's), beside the database of its own: another
    suite's release-service on the shared NATS would take this suite's events."""
    return new_nats("release_service_tests")


@pytest.fixture(scope="session")
def release_database(new_database: Callable[[str], str]) -> str:
    """A database of its own: the values sealed with TEST_MASTER_KEY stay out of other
    suites' release-service, which would refuse to start beside them."""
    url = new_database("release_service_tests")
    upgrade("cephalo_release", url)
    return url


@pytest.fixture(scope="session")
def release_settings(release_database: str, nats_url: str) -> ReleaseSettings:
    return ReleaseSettings(
        database={"url": release_database},
        nats={"url": nats_url},
        messaging={"outbox_poll_seconds": 0.1, "consumer_ack_wait_seconds": 5.0},
        scheduler_poll_seconds=0.2,
        master_key=TEST_MASTER_KEY,
    )


@pytest.fixture
async def client(release_settings: ReleaseSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(release_settings)) as client:
        yield client


STEP = {"name": "Say hello", "target_roles": ["web"], "script_body": "echo hello"}
ProjectFactory = Callable[..., Awaitable[dict[str, object]]]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def new_project(client: httpx.AsyncClient) -> ProjectFactory:
    """Create a project with the given steps (default: one script step) in the default space."""

    async def create(steps: list[dict[str, object]] | None = None) -> dict[str, object]:
        created = await client.post(
            "/api/v1/spaces/default/projects", json={"name": unique("Project")}
        )
        assert created.status_code == 201, created.text
        project = created.json()
        put = await client.put(
            f"/api/v1/spaces/default/projects/{project['id']}/deployment-process",
            json={"steps": steps if steps is not None else [STEP]},
        )
        assert put.status_code == 200, put.text
        return dict(project)

    return create


class SpaceApi:
    """A fresh space and short calls into it: tests never share environments or lifecycles."""

    def __init__(self, client: httpx.AsyncClient, slug: str, space_id: str) -> None:
        self.client = client
        self.slug = slug
        self.id = space_id
        self.base = f"/api/v1/spaces/{slug}"

    async def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, self.base + path, **kwargs)

    async def ok(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = await self.request(method, path, **kwargs)
        assert response.status_code == status, f"{method} {path}: {response.text}"
        return response.json()

    async def environment(self, name: str | None = None) -> dict[str, Any]:
        return dict(
            await self.ok("POST", "/environments", 201, json={"name": name or unique("Env")})
        )

    async def environments(self, *names: str) -> dict[str, dict[str, Any]]:
        return {name: await self.environment(name) for name in names}

    async def lifecycle(self, phases: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        body = {"name": unique("Lifecycle"), "phases": phases, **fields}
        return dict(await self.ok("POST", "/lifecycles", 201, json=body))

    async def project(
        self, steps: list[dict[str, Any]] | None = None, **fields: Any
    ) -> dict[str, Any]:
        project = await self.ok(
            "POST", "/projects", 201, json={"name": unique("Project"), **fields}
        )
        await self.ok(
            "PUT",
            f"/projects/{project['id']}/deployment-process",
            json={"steps": steps if steps is not None else [STEP]},
        )
        return dict(project)

    async def release(self, project: dict[str, Any], **fields: Any) -> dict[str, Any]:
        body = {"version": unique("1.0.0-r"), **fields}
        return dict(await self.ok("POST", f"/projects/{project['id']}/releases", 201, json=body))

    async def deploy(
        self, release: dict[str, Any], environment: dict[str, Any], **fields: Any
    ) -> httpx.Response:
        body = {"release_id": release["id"], "environment_id": environment["id"], **fields}
        return await self.request("POST", "/deployments", json=body)

    async def deployments(self, **params: Any) -> list[dict[str, Any]]:
        page = await self.ok("GET", "/deployments", params={"take": 100, **params})
        return list(page["items"])

    async def wait_for(
        self, condition: Callable[[], Awaitable[bool]], timeout: float = 30.0
    ) -> None:
        async with asyncio.timeout(timeout):
            while not await condition():
                await asyncio.sleep(0.1)


@pytest.fixture
async def api(client: httpx.AsyncClient) -> SpaceApi:
    slug = unique("space")
    created = await client.post("/api/v1/spaces", json={"name": slug, "slug": slug})
    assert created.status_code == 201, created.text
    return SpaceApi(client, slug, created.json()["id"])


@pytest.fixture
async def other_space(client: httpx.AsyncClient) -> SpaceApi:
    """A second space, for proving that ids from another space never resolve."""
    slug = unique("other")
    created = await client.post("/api/v1/spaces", json={"name": slug, "slug": slug})
    assert created.status_code == 201, created.text
    return SpaceApi(client, slug, created.json()["id"])


@dataclass
class PackageFeed:
    """A real package-feed served over HTTP; `push` stores a tiny zip as `<id>.<version>.zip`."""

    url: str
    http: httpx.AsyncClient

    async def push(
        self, space_id: str, package_id: str, version: str, params: dict[str, str] | None = None
    ) -> dict[str, Any]:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("readme.txt", f"{package_id} {version}")
        response = await self.http.post(
            f"/api/v1/spaces/{space_id}/packages",
            params=params or {},
            files={"file": (f"{package_id}.{version}.zip", buffer.getvalue(), "application/zip")},
        )
        assert response.status_code in (200, 201), response.text
        return dict(response.json())


@pytest.fixture(scope="session")
def feed_settings(migrate: Callable[[str], str], nats_url: str, scratch_dir: Path) -> FeedSettings:
    return FeedSettings(
        database={"url": migrate("cephalo_feed")},
        nats={"url": nats_url},
        messaging={"outbox_poll_seconds": 0.1},
        storage_dir=scratch_dir / "release-tests-feed",
    )


@pytest.fixture(scope="session")
async def package_feed(feed_settings: FeedSettings) -> AsyncIterator[PackageFeed]:
    async with (
        serving(create_feed_app(feed_settings)) as url,
        httpx.AsyncClient(base_url=url) as http,
    ):
        yield PackageFeed(url, http)


@pytest.fixture
async def feed_service(
    release_settings: ReleaseSettings, package_feed: PackageFeed
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """release-service asking the real package-feed for versions (the app and a client)."""
    app = create_app(release_settings.model_copy(update={"feed_url": package_feed.url}))
    async with running(app) as client:
        yield app, client


@pytest.fixture
def feed_client(feed_service: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return feed_service[1]


@pytest.fixture
async def feed_api(feed_client: httpx.AsyncClient) -> SpaceApi:
    slug = unique("space")
    created = await feed_client.post("/api/v1/spaces", json={"name": slug, "slug": slug})
    assert created.status_code == 201, created.text
    return SpaceApi(feed_client, slug, created.json()["id"])
