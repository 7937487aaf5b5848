"""release-service as this service sees it: spaces exist, environments resolve by name or id."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import httpx

from cephalo_common.errors import Unavailable


class ReleaseServiceClient:
    """An `EnvironmentDirectory` over release-service's internal HTTP API."""

    def __init__(self, base_url: str, *, timeout_seconds: float) -> None:
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_seconds)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def space_exists(self, space_id: uuid.UUID) -> bool:
        return await self._get(f"/api/v1/spaces/{space_id}") is not None

    async def find_environment(self, space_id: uuid.UUID, ref: str) -> uuid.UUID | None:
        body = await self._get(f"/api/v1/spaces/{space_id}/environments/{quote(ref, safe='')}")
        return None if body is None else uuid.UUID(str(body["id"]))

    async def _get(self, path: str) -> dict[str, object] | None:
        """The JSON body, None on 404; anything else unexpected is a 503 for our caller."""
        try:
            response = await self._http.get(path)
        except httpx.HTTPError as error:
            raise Unavailable(f"release-service is unreachable: {error}") from error
        if response.status_code == httpx.codes.NOT_FOUND:
            return None
        if not response.is_success:
            raise Unavailable(f"release-service answered HTTP {response.status_code} for {path}")
        body = response.json()
        if not isinstance(body, dict) or "id" not in body:
            raise Unavailable(f"release-service sent an unexpected body for {path}")
        return body
