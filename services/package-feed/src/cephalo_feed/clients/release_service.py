"""release-service over HTTP, as the domain's `ReleaseReferences`.

The call (release-service serves it; its tests read it with this client):
`GET {release_service_url}/api/v1/spaces/{space_id}/package-references?package_id=<id>`
→ 200 `{"package_id": "<id>", "versions": ["1.0.0", "1.2.0-beta.1"]}`: every version of
that package (case-insensitive id) that some release of the space uses. A 404 (an older
release-service, or a space it does not know) means nothing is known and everything is
kept; transport errors, timeouts and 5xx mean release-service is unavailable right now.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from cephalo_common.packages import normalize_version
from cephalo_feed.domain.references import Knowledge, References

PATH = "/api/v1/spaces/{space_id}/package-references"


class ReleaseServiceReferences:
    def __init__(self, base_url: str, *, timeout_seconds: float) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout_seconds, trust_env=False
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def references(self, space_id: uuid.UUID, package_id: str) -> References:
        path = PATH.format(space_id=space_id)
        try:
            response = await self._http.get(path, params={"package_id": package_id})
        except httpx.HTTPError as error:
            return References(Knowledge.UNAVAILABLE, reason=f"release-service: {error!r}")
        if response.status_code == httpx.codes.NOT_FOUND:
            return References(
                Knowledge.NO_ENDPOINT, reason="release-service does not report package use"
            )
        if not response.is_success:
            return References(
                Knowledge.UNAVAILABLE, reason=f"release-service answered {response.status_code}"
            )
        try:
            versions = _versions(response.json())
        except (ValueError, TypeError, KeyError) as error:
            return References(Knowledge.UNAVAILABLE, reason=f"unreadable answer: {error}")
        return References(Knowledge.KNOWN, frozenset(_key(version) for version in versions))


def _versions(body: Any) -> list[str]:
    """`{"versions": [...]}`; a bare list of strings or `{"version": ...}` objects is read too."""
    items = body["versions"] if isinstance(body, dict) else body
    if not isinstance(items, list):
        raise TypeError("versions is not a list")
    return [str(item["version"]) if isinstance(item, dict) else str(item) for item in items]


def _key(version: str) -> str:
    try:
        return normalize_version(version)
    except ValueError:
        return version.lower()
