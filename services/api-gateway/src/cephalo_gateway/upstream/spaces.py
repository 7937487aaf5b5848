"""Space slugs → ids, asked of release-service (the owner of spaces) and cached."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from urllib.parse import quote

from cephalo_common.errors import NotFound, Unavailable
from cephalo_gateway.domain.routing import API_PREFIX, Upstream
from cephalo_gateway.domain.spaces import SpaceCache
from cephalo_gateway.upstream.client import UpstreamClient


class SpaceResolver:
    def __init__(
        self,
        client: UpstreamClient,
        cache: SpaceCache,
        identity: Callable[[], tuple[str, str]] | None = None,
    ) -> None:
        self._client = client
        self._cache = cache
        self._identity = identity

    async def space_id(self, slug: str, *, request_id: str) -> uuid.UUID:
        """The id of the space `slug` names; `NotFound` when there is none."""
        cached = self._cache.get(slug)
        if cached is not None:
            return cached
        status, body = await self._client.get_json(
            Upstream.RELEASE_SERVICE,
            f"{API_PREFIX}/spaces/{quote(slug, safe='')}",
            headers=[
                ("accept", "application/json"),
                ("x-request-id", request_id),
                *([self._identity()] if self._identity else []),
            ],
        )
        if 400 <= status < 500:
            raise NotFound(f"space {slug!r} was not found")
        try:
            space_id = uuid.UUID(str(body["id"])) if status == 200 else None
        except (KeyError, TypeError, ValueError):
            space_id = None
        if space_id is None:
            raise Unavailable(f"{Upstream.RELEASE_SERVICE.value} could not resolve spaces")
        self._cache.put(slug, space_id)
        return space_id
