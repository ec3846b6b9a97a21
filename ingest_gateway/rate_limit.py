"""Per-API-key rate limits on events: a token bucket per key digest, refilled continuously.
A request needing more tokens than the bucket holds is refused whole (429 with Retry-After:
the seconds until it would fit), so nothing of it is produced."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from ops_common.http.errors import RateLimited


@dataclass
class _Bucket:
    tokens: float
    updated: float


class EventRateLimiter:
    """`rate` events per second per key, at most `burst` at once; rate 0 turns it off."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key_digest: str, events: int) -> None:
        """Spend `events` tokens of the key's bucket, or raise RateLimited."""
        if self._rate <= 0:
            return
        now = self._clock()
        bucket = self._buckets.setdefault(key_digest, _Bucket(self._burst, now))
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        if events > bucket.tokens:
            wait = (min(events, self._burst) - bucket.tokens) / self._rate
            raise RateLimited(
                f"this API key is over its rate limit of {self._rate:g} events/s; retry later",
                retry_after=max(1, math.ceil(wait)),
                events=events,
            )
        bucket.tokens -= events
