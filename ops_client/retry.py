"""When to try a batch again: exponential back-off with full jitter, or the server's
Retry-After when it gave one (429 and 503 answers)."""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Answers worth retrying: rate limited, and the server (or Kafka behind it) unavailable.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; waits grow from `base_s` by doubling up to `max_s`."""

    attempts: int = 8
    base_s: float = 0.2
    max_s: float = 30.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before try number `attempt + 1` (`attempt` counts from 1)."""
        hinted = parse_retry_after(retry_after)
        if hinted is not None:
            # A little jitter on top, so clients told the same second do not return together.
            return min(hinted, self.max_s) + random.uniform(0, self.base_s)
        return random.uniform(0, min(self.max_s, self.base_s * 2 ** (attempt - 1)))


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds; None when absent or not a number of seconds."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from our gateway; back-off applies instead
    return max(seconds, 0.0)
