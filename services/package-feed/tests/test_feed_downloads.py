"""Downloads follow RFC 9110: ranges, validators, conditional requests; signed links."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from cephalo_feed.domain.downloads import content_disposition


@pytest.fixture
async def package(client: httpx.AsyncClient, archives: Any) -> dict[str, Any]:
    data = archives.zip({"payload.bin": os.urandom(5000)}, compression=0)
    response = await client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/packages",
        files={"file": ("Acme.Web.1.0.0.zip", data, "application/zip")},
    )
    assert response.status_code == 201, response.text
    return {**response.json(), "data": data}


async def test_a_full_download_has_length_validators_and_a_safe_disposition(
    client: httpx.AsyncClient, package: dict[str, Any]
) -> None:
    response = await client.get(package["content_path"])
    assert response.status_code == 200
    assert response.content == package["data"]
    headers = response.headers
    assert headers["content-length"] == str(len(package["data"]))
    assert headers["etag"] == f'"{hashlib.sha256(package["data"]).hexdigest()}"'
    assert headers["accept-ranges"] == "bytes"
    assert headers["last-modified"].endswith("GMT")
    assert headers["content-type"] == "application/zip"
    assert headers["content-disposition"] == (
        "attachment; filename=\"Acme.Web.1.0.0.zip\"; filename*=UTF-8''Acme.Web.1.0.0.zip"
    )


async def test_head_answers_the_headers_without_the_body(
    client: httpx.AsyncClient, package: dict[str, Any]
) -> None:
    response = await client.head(package["content_path"])
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(package["data"]))
    assert response.headers["etag"] == f'"{package["sha256"]}"'


@pytest.mark.parametrize(
    ("header", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, None),
        ("bytes=-10", None, None),
        ("bytes=0-999999", 0, None),
    ],
)
async def test_a_single_range_is_a_partial_response(
    client: httpx.AsyncClient,
    package: dict[str, Any],
    header: str,
    start: int | None,
    end: int | None,
) -> None:
    data: bytes = package["data"]
    size = len(data)
    first = size - 10 if start is None else start
    last = size - 1 if end is None else end
    response = await client.get(package["content_path"], headers={"Range": header})
    assert response.status_code == 206
    assert response.content == data[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{size}"
    assert response.headers["content-length"] == str(last - first + 1)


@pytest.mark.parametrize("header", ["bytes=999999-", "bytes=-0"])
async def test_an_unsatisfiable_range_is_416_with_the_size(
    client: httpx.AsyncClient, package: dict[str, Any], header: str
) -> None:
    response = await client.get(package["content_path"], headers={"Range": header})
    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(package['data'])}"
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-5", "bytes=9-3", "bytes=abc"])
async def test_several_or_unparsable_ranges_get_the_whole_body(
    client: httpx.AsyncClient, package: dict[str, Any], header: str
) -> None:
    response = await client.get(package["content_path"], headers={"Range": header})
    assert response.status_code == 200
    assert response.content == package["data"]


@pytest.mark.parametrize("tag", ["{etag}", "W/{etag}", '"other", {etag}', "*"])
async def test_if_none_match_with_the_current_tag_is_not_modified(
    client: httpx.AsyncClient, package: dict[str, Any], tag: str
) -> None:
    etag = f'"{package["sha256"]}"'
    response = await client.get(
        package["content_path"], headers={"If-None-Match": tag.format(etag=etag)}
    )
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


async def test_if_none_match_with_another_tag_sends_the_body(
    client: httpx.AsyncClient, package: dict[str, Any]
) -> None:
    response = await client.get(package["content_path"], headers={"If-None-Match": '"stale"'})
    assert response.status_code == 200
    assert response.content == package["data"]


async def test_if_modified_since_the_publication_is_not_modified(
    client: httpx.AsyncClient, package: dict[str, Any]
) -> None:
    first = await client.get(package["content_path"])
    response = await client.get(
        package["content_path"], headers={"If-Modified-Since": first.headers["last-modified"]}
    )
    assert response.status_code == 304


async def test_if_match_with_another_tag_fails_the_precondition(
    client: httpx.AsyncClient, package: dict[str, Any]
) -> None:
    response = await client.get(package["content_path"], headers={"If-Match": '"other"'})
    assert response.status_code == 412


async def test_if_range_honours_the_range_only_for_the_current_tag(
    client: httpx.AsyncClient, package: dict[str, Any]
) -> None:
    etag = f'"{package["sha256"]}"'
    current = await client.get(
        package["content_path"], headers={"Range": "bytes=0-3", "If-Range": etag}
    )
    assert current.status_code == 206 and current.content == package["data"][:4]
    stale = await client.get(
        package["content_path"], headers={"Range": "bytes=0-3", "If-Range": '"stale"'}
    )
    assert stale.status_code == 200 and stale.content == package["data"]


async def test_a_version_is_found_by_any_spelling_of_it(
    client: httpx.AsyncClient, package: dict[str, Any]
) -> None:
    base = f"/api/v1/spaces/{package['space_id']}/packages/acme.web/versions"
    for spelling in ("1.0", "1.0.0.0", "01.0.0"):
        response = await client.get(f"{base}/{spelling}/content", headers={"Range": "bytes=0-1"})
        assert response.status_code == 206


async def test_content_in_another_space_is_not_found(
    client: httpx.AsyncClient, package: dict[str, Any]
) -> None:
    path = package["content_path"].replace(package["space_id"], str(uuid.uuid4()))
    assert (await client.get(path)).status_code == 404


async def test_a_signed_link_downloads_until_it_expires(
    client: httpx.AsyncClient, package: dict[str, Any]
) -> None:
    base = f"/api/v1/spaces/{package['space_id']}/packages/Acme.Web/versions/1.0.0"
    link = await client.post(f"{base}/download-url", json={"ttl_seconds": 60})
    assert link.status_code == 200
    body = link.json()
    assert body["url"] == body["path"]
    response = await client.get(body["path"])
    assert response.status_code == 200 and response.content == package["data"]
    query = parse_qs(urlsplit(body["path"]).query)
    assert int(query["expires"][0]) <= time.time() + 61


@pytest.mark.parametrize(
    "tamper",
    [
        lambda expires, signature: (expires - 3600, signature),
        lambda expires, signature: (expires + 1, signature),
        lambda expires, signature: (expires, "0" * 64),
        lambda expires, signature: (expires, None),
    ],
    ids=["expired", "extended", "forged", "unsigned-expiry"],
)
async def test_a_tampered_or_expired_link_is_forbidden(
    client: httpx.AsyncClient, package: dict[str, Any], tamper: Any
) -> None:
    base = f"/api/v1/spaces/{package['space_id']}/packages/Acme.Web/versions/1.0.0"
    body = (await client.post(f"{base}/download-url")).json()
    query = parse_qs(urlsplit(body["path"]).query)
    expires, signature = tamper(int(query["expires"][0]), query["signature"][0])
    params: dict[str, Any] = {"expires": expires}
    if signature is not None:
        params["signature"] = signature
    response = await client.get(f"{base}/content", params=params)
    assert response.status_code == 403


async def test_a_link_stops_working_when_the_version_is_overwritten(
    client: httpx.AsyncClient, package: dict[str, Any], archives: Any
) -> None:
    space = package["space_id"]
    base = f"/api/v1/spaces/{space}/packages/Acme.Web/versions/1.0.0"
    path = (await client.post(f"{base}/download-url")).json()["path"]
    replaced = await client.post(
        f"/api/v1/spaces/{space}/packages",
        params={"overwriteMode": "OverwriteExisting"},
        files={"file": ("Acme.Web.1.0.0.zip", archives.zip({"x": os.urandom(10)}), "x/y")},
    )
    assert replaced.status_code == 201
    assert (await client.get(path)).status_code == 403


async def test_a_link_for_an_unknown_version_is_not_found(client: httpx.AsyncClient) -> None:
    response = await client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/packages/Nope/versions/1.0.0/download-url"
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("name", "expected_fallback"),
    [
        ('evil"; filename="x.exe', "evil___filename__x.exe"),
        ("line\r\nbreak.zip", "line__break.zip"),
        ("../../etc/passwd", "etc_passwd"),
        ("Café.1.0.zip", "Caf_.1.0.zip"),
    ],
)
def test_content_disposition_never_carries_raw_quotes_breaks_or_paths(
    name: str, expected_fallback: str
) -> None:
    header = content_disposition(name)
    fallback = header.split('filename="', 1)[1].split('"', 1)[0]
    assert fallback == expected_fallback
    assert "\r" not in header and "\n" not in header
    assert header.count('"') == 2
