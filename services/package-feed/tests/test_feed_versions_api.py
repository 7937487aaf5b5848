"""Versions newest first in semantic order, channel rules, package search."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from cephalo_common.testing import running
from cephalo_feed.app import create_app
from cephalo_feed.settings import FeedSettings

VERSIONS = [
    "1.0.0-alpha",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0",
    "1.0.1",
    "1.10.0",
    "2.0.0-rc.1",
]


@pytest.fixture(scope="module")
async def client(feed_settings: FeedSettings) -> AsyncIterator[httpx.AsyncClient]:
    """One running feed for the module: these tests only read what `space` pushed."""
    async with running(create_app(feed_settings)) as client:
        yield client


@pytest.fixture(scope="module")
async def space(client: httpx.AsyncClient, archives: Any) -> uuid.UUID:
    """A space holding Acme.Web in every version of VERSIONS, pushed in random order."""
    space = uuid.uuid4()
    for version in random.Random(3).sample(VERSIONS, len(VERSIONS)):
        response = await client.post(
            f"/api/v1/spaces/{space}/packages",
            files={"file": (f"Acme.Web.{version}.zip", archives.zip({"v": version.encode()}), "x")},
        )
        assert response.status_code == 201, response.text
    other = await client.post(
        f"/api/v1/spaces/{space}/packages",
        files={"file": ("Acme.Worker.3.0.0.zip", archives.zip({"w": b"1"}), "x")},
    )
    assert other.status_code == 201
    return space


async def test_versions_come_newest_first_in_semantic_order(
    client: httpx.AsyncClient, space: uuid.UUID
) -> None:
    response = await client.get(f"/api/v1/spaces/{space}/packages/acme.web/versions")
    assert response.status_code == 200
    assert [item["version"] for item in response.json()] == VERSIONS[::-1]


async def test_versions_page_with_limit_and_offset(
    client: httpx.AsyncClient, space: uuid.UUID
) -> None:
    response = await client.get(
        f"/api/v1/spaces/{space}/packages/Acme.Web/versions", params={"limit": 2, "offset": 1}
    )
    assert [item["version"] for item in response.json()] == ["1.10.0", "1.0.1"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "2.0.0-rc.1"),
        ({"include_prerelease": "false"}, "1.10.0"),
        ({"prerelease_tag": "^$"}, "1.10.0"),
        ({"version_range": "[1.0,1.10)"}, "1.0.1"),
        ({"version_range": "[1.0.0-alpha,1.0.0)"}, "1.0.0-beta.11"),
        ({"version_range": "[1.0.0-alpha,1.0.0)", "prerelease_tag": "^alpha"}, "1.0.0-alpha"),
        ({"version_range": "(,1.0.0]"}, "1.0.0"),
    ],
)
async def test_latest_applies_the_channel_rule(
    client: httpx.AsyncClient, space: uuid.UUID, params: dict[str, str], expected: str
) -> None:
    response = await client.get(f"/api/v1/spaces/{space}/packages/Acme.Web/latest", params=params)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == expected


async def test_latest_is_not_found_when_no_version_fits(
    client: httpx.AsyncClient, space: uuid.UUID
) -> None:
    response = await client.get(
        f"/api/v1/spaces/{space}/packages/Acme.Web/latest", params={"version_range": "[5.0,)"}
    )
    assert response.status_code == 404


async def test_an_invalid_range_is_invalid_input(
    client: httpx.AsyncClient, space: uuid.UUID
) -> None:
    response = await client.get(
        f"/api/v1/spaces/{space}/packages/Acme.Web/latest", params={"version_range": "[1.0"}
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "query.version_range"


async def test_versions_of_an_unknown_package_are_not_found(client: httpx.AsyncClient) -> None:
    response = await client.get(f"/api/v1/spaces/{uuid.uuid4()}/packages/Nope/versions")
    assert response.status_code == 404


async def test_a_version_is_found_by_any_spelling(
    client: httpx.AsyncClient, space: uuid.UUID
) -> None:
    response = await client.get(f"/api/v1/spaces/{space}/packages/ACME.WEB/versions/1.0.1.0")
    assert response.status_code == 200
    assert response.json()["version"] == "1.0.1"
    assert response.json()["release_notes"] == ""


async def test_an_unparsable_version_is_not_found(
    client: httpx.AsyncClient, space: uuid.UUID
) -> None:
    response = await client.get(f"/api/v1/spaces/{space}/packages/Acme.Web/versions/latest")
    assert response.status_code == 404


async def test_search_lists_package_ids_with_their_newest_version(
    client: httpx.AsyncClient, space: uuid.UUID
) -> None:
    response = await client.get(f"/api/v1/spaces/{space}/packages/ids")
    assert response.status_code == 200
    assert [
        (item["package_id"], item["latest_version"], item["version_count"])
        for item in response.json()
    ] == [
        ("Acme.Web", "2.0.0-rc.1", len(VERSIONS)),
        ("Acme.Worker", "3.0.0", 1),
    ]
    filtered = await client.get(f"/api/v1/spaces/{space}/packages/ids", params={"filter": "WORK"})
    assert [item["package_id"] for item in filtered.json()] == ["Acme.Worker"]


async def test_search_treats_like_wildcards_literally(
    client: httpx.AsyncClient, space: uuid.UUID
) -> None:
    response = await client.get(f"/api/v1/spaces/{space}/packages/ids", params={"filter": "%"})
    assert response.json() == []


async def test_the_version_list_filters_by_id_substring(
    client: httpx.AsyncClient, space: uuid.UUID
) -> None:
    response = await client.get(f"/api/v1/spaces/{space}/packages", params={"filter": "worker"})
    assert [item["package_id"] for item in response.json()] == ["Acme.Worker"]
