"""Token buckets per key (user, address, webhook), held in this process.

Each replica counts on its own, as Octopus's rate limits do on each HA node: N replicas
allow up to N times the configured rate. Memory is bounded: the least recently used keys
are forgotten first (a forgotten key starts with a full bucket).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_MAX_KEYS = 100_000


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_seconds: int = 0


class TokenBucket:
    """`rate_per_minute` tokens refill continuously up to `burst`; a request takes one."""

    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if rate_per_minute <= 0 or burst < 1:
            raise ValueError("a bucket needs a positive rate and a burst of at least 1")
        self._rate = rate_per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def _level(self, key: str, now: float) -> float:
        tokens, updated = self._buckets.get(key, (self._burst, now))
        return min(self._burst, tokens + (now - updated) * self._rate)

    def _store(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)

    def take(self, key: str, cost: float = 1.0) -> Decision:
        now = self._clock()
        tokens = self._level(key, now)
        if tokens >= cost:
            self._store(key, tokens - cost, now)
            return Decision(True)
        self._store(key, tokens, now)
        return Decision(False, max(1, math.ceil((cost - tokens) / self._rate)))

    def peek(self, key: str, cost: float = 1.0) -> Decision:
        """Would `take` succeed? (Failed logins are checked first and charged after.)"""
        tokens = self._level(key, self._clock())
        if tokens >= cost:
            return Decision(True)
        return Decision(False, max(1, math.ceil((cost - tokens) / self._rate)))
