"""package-feed over HTTP, as the domain's `PackageVersionSource`.

`GET /api/v1/spaces/{space}/packages/{id}/versions?version_range=&prerelease_tag=` lists
versions newest first (semantic order) through one channel rule; `GET …/versions/{v}` is
200 or 404. A 422 (a rule the feed cannot apply) is `Invalid`; transport errors, timeouts
and any other status are `Unavailable` (503): a release is never created from a guess.
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

import httpx

from cephalo_common.errors import Invalid, Unavailable

PAGE_SIZE = 500
MAX_PAGES = 20


class FeedPackageVersions:
    def __init__(self, base_url: str, *, timeout_seconds: float) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout_seconds, trust_env=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def versions(
        self, space_id: uuid.UUID, package_id: str, *, version_range: str, tag: str
    ) -> list[str]:
        path = f"/api/v1/spaces/{space_id}/packages/{quote(package_id, safe='')}/versions"
        found: list[str] = []
        for page in range(MAX_PAGES):
            params = {
                "version_range": version_range,
                "prerelease_tag": tag,
                "limit": PAGE_SIZE,
                "offset": page * PAGE_SIZE,
            }
            items = _items(await self._get(path, params, missing_ok=True))
            found += [str(item["version"]) for item in items]
            if len(items) < PAGE_SIZE:
                break
        return found

    async def exists(self, space_id: uuid.UUID, package_id: str, version: str) -> bool:
        path = (
            f"/api/v1/spaces/{space_id}/packages/{quote(package_id, safe='')}"
            f"/versions/{quote(version, safe='')}"
        )
        return await self._get(path, {}, missing_ok=True) is not None

    async def _get(self, path: str, params: dict[str, Any], *, missing_ok: bool) -> Any:
        try:
            response = await self._http.get(path, params=params)
        except httpx.HTTPError as error:
            raise Unavailable(f"package-feed cannot be reached: {error!r}") from error
        if response.status_code == httpx.codes.NOT_FOUND and missing_ok:
            return None
        if response.status_code == httpx.codes.UNPROCESSABLE_ENTITY:
            raise Invalid(f"package-feed refused the channel rule: {_detail(response)}")
        if not response.is_success:
            raise Unavailable(f"package-feed answered {response.status_code}")
        try:
            return response.json()
        except ValueError as error:
            raise Unavailable(f"package-feed sent an unreadable answer: {error}") from error


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail") or response.text)[:500]
    except (ValueError, AttributeError):
        return response.text[:500]


def _items(body: Any) -> list[dict[str, Any]]:
    if body is None:
        return []
    if not isinstance(body, list):
        raise Unavailable("package-feed sent an unreadable version list")
    return [item for item in body if isinstance(item, dict) and "version" in item]
