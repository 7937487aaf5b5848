from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from cephalo_common.testing import running
from cephalo_release.app import create_app
from cephalo_release.settings import ReleaseSettings


@pytest.fixture(scope="session")
def release_settings(migrate: Callable[[str], str], nats_url: str) -> ReleaseSettings:
    return ReleaseSettings(
        database={"url": migrate("cephalo_release")},
        nats={"url": nats_url},
        messaging={"outbox_poll_seconds": 0.1},
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
