"""Signed package download links pass the gateway without an API key; nothing else does.

Real package-feed and gateway, both under uvicorn on loopback: the package is pushed and
its link made with the administrator's key, then fetched with no credentials at all.
"""

from __future__ import annotations

import io
import time
import uuid
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cephalo_common.packages.versions import normalize_version
from cephalo_feed.domain.signing import sign_download
from cephalo_feed.settings import FeedSettings
from cephalo_gateway.app import create_app
from cephalo_gateway.domain.signed_links import is_signed_download
from cephalo_gateway.settings import GatewaySettings

PACKAGE_ID = "Signed.Web"
TIMEOUT = 60.0
"""Generous: the machines these run on are shared, and a push fsyncs."""
VERSION = "1.2.3"


def package_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app/readme.txt", "signed download " * 200)
    return buffer.getvalue()


@dataclass
class Pushed:
    gateway_url: str
    space: uuid.UUID
    body: bytes
    sha256: str
    link: str
    """The signed path the feed's `download-url` answered, with its query."""


@pytest.fixture
async def gateway_url(serve: Any, gateway_settings: GatewaySettings) -> AsyncIterator[str]:
    async with serve(create_app(gateway_settings)) as url:
        yield url


@pytest.fixture
async def pushed(gateway_url: str, admin_key: str) -> Pushed:
    space = uuid.uuid4()
    body = package_bytes()
    async with httpx.AsyncClient(
        base_url=gateway_url,
        headers={"X-Cephalo-Api-Key": admin_key},
        trust_env=False,
        timeout=TIMEOUT,
    ) as admin:
        stored = await admin.post(
            f"/api/v1/spaces/{space}/packages",
            params={"filename": f"{PACKAGE_ID}.{VERSION}.zip"},
            content=body,
        )
        assert stored.status_code == 201, stored.text
        link = await admin.post(
            f"/api/v1/spaces/{space}/packages/{PACKAGE_ID}/versions/{VERSION}/download-url"
        )
        assert link.status_code == 200, link.text
    return Pushed(gateway_url, space, body, stored.json()["sha256"], link.json()["path"])


@pytest.fixture
async def anonymous(gateway_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=gateway_url, trust_env=False, timeout=TIMEOUT) as client:
        yield client


def content_path(space: uuid.UUID) -> str:
    return f"/api/v1/spaces/{space}/packages/{PACKAGE_ID}/versions/{VERSION}/content"


def query_of(link: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(link).query).items()}


async def test_a_signed_link_downloads_through_the_gateway_without_a_key(
    pushed: Pushed, anonymous: httpx.AsyncClient
) -> None:
    response = await anonymous.get(pushed.link)
    assert response.status_code == 200, response.text
    assert response.content == pushed.body
    assert response.headers["etag"] == f'"{pushed.sha256}"'
    head = await anonymous.head(pushed.link)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(len(pushed.body))
    ranged = await anonymous.get(pushed.link, headers={"Range": "bytes=0-9"})
    assert ranged.status_code == 206 and ranged.content == pushed.body[:10]


async def test_a_tampered_signature_is_refused_by_the_feed(
    pushed: Pushed, anonymous: httpx.AsyncClient
) -> None:
    query = query_of(pushed.link)
    flipped = ("0" if query["signature"][0] != "0" else "1") + query["signature"][1:]
    for params in (
        {"expires": query["expires"], "signature": flipped},
        {"expires": str(int(query["expires"]) + 3600), "signature": query["signature"]},
    ):
        response = await anonymous.get(content_path(pushed.space), params=params)
        assert response.status_code == 403, response.text
        assert response.json()["detail"] == "the download link is invalid or has expired"


async def test_a_link_for_another_package_or_space_is_refused(
    pushed: Pushed, anonymous: httpx.AsyncClient
) -> None:
    params = query_of(pushed.link)
    other_space = await anonymous.get(content_path(uuid.uuid4()), params=params)
    assert other_space.status_code == 404
    other_version = await anonymous.get(
        f"/api/v1/spaces/{pushed.space}/packages/{PACKAGE_ID}/versions/9.9.9/content",
        params=params,
    )
    assert other_version.status_code == 404


async def test_an_expired_signature_is_refused_by_the_feed(
    pushed: Pushed, anonymous: httpx.AsyncClient, feed_settings: FeedSettings
) -> None:
    """Signed with the feed's own key, so only the expiry is wrong."""
    expires = int(time.time()) - 60
    signature = sign_download(
        feed_settings.download_url_secret.get_secret_value().encode(),
        space_id=pushed.space,
        package_id_key=PACKAGE_ID.lower(),
        version_key=normalize_version(VERSION),
        sha256=pushed.sha256,
        expires=expires,
    )
    response = await anonymous.get(
        content_path(pushed.space), params={"expires": str(expires), "signature": signature}
    )
    assert response.status_code == 403, response.text
    fresh = sign_download(
        feed_settings.download_url_secret.get_secret_value().encode(),
        space_id=pushed.space,
        package_id_key=PACKAGE_ID.lower(),
        version_key=normalize_version(VERSION),
        sha256=pushed.sha256,
        expires=expires + 3600,
    )
    accepted = await anonymous.get(
        content_path(pushed.space), params={"expires": str(expires + 3600), "signature": fresh}
    )
    assert accepted.status_code == 200 and accepted.content == pushed.body


async def test_nothing_else_passes_without_a_key(
    pushed: Pushed, anonymous: httpx.AsyncClient
) -> None:
    query = urlsplit(pushed.link).query
    space = pushed.space
    base = f"/api/v1/spaces/{space}/packages"
    refused = [
        ("GET", content_path(space)),
        ("GET", f"{content_path(space)}?expires=1"),
        ("GET", f"{content_path(space)}?signature=ab"),
        ("GET", f"{content_path(space)}?{query}&take=1"),
        ("GET", f"{content_path(space)}?{query}&expires=2"),
        ("GET", f"{content_path(space)}/?{query}"),
        ("POST", f"{content_path(space)}?{query}"),
        ("DELETE", f"{content_path(space)}?{query}"),
        ("POST", f"{base}/{PACKAGE_ID}/versions/{VERSION}/download-url?{query}"),
        ("GET", f"{base}?{query}"),
        ("GET", f"{base}/{PACKAGE_ID}/versions?{query}"),
        ("GET", f"{base}/{PACKAGE_ID}/versions/{VERSION}?{query}"),
        ("GET", f"{base}/%2E%2E/versions/{VERSION}/content?{query}"),
        ("GET", f"{base}/a%2Fb/versions/{VERSION}/content?{query}"),
        ("GET", f"/api/v1/spaces/default/packages/{PACKAGE_ID}/versions/{VERSION}/content?{query}"),
        ("GET", f"/api/v1/spaces/{space}/projects/p/versions/v/content?{query}"),
        ("GET", f"/api/v1/spaces/{space}/feeds/p/versions/v/content?{query}"),
    ]
    for method, path in refused:
        response = await anonymous.request(method, path)
        assert response.status_code == 401, (method, path, response.status_code)


async def test_a_wrong_key_beside_a_valid_signature_is_still_a_401(
    pushed: Pushed, anonymous: httpx.AsyncClient
) -> None:
    response = await anonymous.get(
        pushed.link, headers={"X-Cephalo-Api-Key": "API-WRONGWRONGWRONGWRONG"}
    )
    assert response.status_code == 401


async def test_a_body_sent_with_a_signed_get_is_not_forwarded(
    pushed: Pushed, anonymous: httpx.AsyncClient
) -> None:
    response = await anonymous.request("GET", pushed.link, content=b"x" * 1000)
    assert response.status_code == 200
    assert response.content == pushed.body


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        (
            "GET",
            f"/api/v1/spaces/{uuid.UUID(int=1)}/packages/A/versions/1.0/content",
            "expires=1&signature=ab",
            True,
        ),
        (
            "HEAD",
            f"/api/v1/spaces/{uuid.UUID(int=1)}/packages/A/versions/1.0/content",
            "signature=ab&expires=1",
            True,
        ),
        (
            "PUT",
            f"/api/v1/spaces/{uuid.UUID(int=1)}/packages/A/versions/1.0/content",
            "expires=1&signature=ab",
            False,
        ),
        (
            "GET",
            f"/api/v1/spaces/{uuid.UUID(int=1)}/packages/A/versions/1.0/content",
            "expires=&signature=ab",
            False,
        ),
        (
            "GET",
            f"/api/v1/spaces/{uuid.UUID(int=1)}/packages/A/versions/1.0/content",
            "expires=1;signature=ab",
            False,
        ),
        (
            "GET",
            f"/api/v1/spaces/{uuid.UUID(int=1)}/packages/A/versions/1.0/content",
            "expires=1&signature=ab&x",
            False,
        ),
        (
            "GET",
            f"/api/v1/spaces/{uuid.UUID(int=1)}/packages/A/versions/1.0/content",
            "expires=1&signature=" + "a" * 600,
            False,
        ),
        (
            "GET",
            f"/api/v1/spaces/{uuid.UUID(int=1)}/packages/A/versions/%2e/content",
            "expires=1&signature=ab",
            False,
        ),
        (
            "GET",
            f"/api/v1/spaces/{uuid.UUID(int=1)}/packages/A%5Cb/versions/1/content",
            "expires=1&signature=ab",
            False,
        ),
        (
            "GET",
            f"/api/v1/spaces/{uuid.UUID(int=1)}/packages/A%0A/versions/1/content",
            "expires=1&signature=ab",
            False,
        ),
        (
            "GET",
            f"/api/v1/spaces/{uuid.UUID(int=1)}/packages//versions/1/content",
            "expires=1&signature=ab",
            False,
        ),
        (
            "GET",
            f"/api/v2/spaces/{uuid.UUID(int=1)}/packages/A/versions/1/content",
            "expires=1&signature=ab",
            False,
        ),
    ],
)
def test_the_signed_link_shape_is_exact(method: str, path: str, query: str, expected: bool) -> None:
    assert is_signed_download(method, path, query) is expected
