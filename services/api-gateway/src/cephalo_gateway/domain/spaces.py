"""Space slugs resolved to ids, remembered for a while: spaces are renamed rarely."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable


class SpaceCache:
    """slug → space id for `ttl_seconds`; only found spaces are kept, so a new one is
    visible at once and unknown slugs cannot grow the cache."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, tuple[uuid.UUID, float]] = {}

    def get(self, slug: str) -> uuid.UUID | None:
        entry = self._entries.get(slug.lower())
        if entry is None:
            return None
        space_id, expires_at = entry
        if self._clock() >= expires_at:
            del self._entries[slug.lower()]
            return None
        return space_id

    def put(self, slug: str, space_id: uuid.UUID) -> None:
        if self._ttl > 0:
            self._entries[slug.lower()] = (space_id, self._clock() + self._ttl)
