"""Unit tests for ingest_gateway.rate_limit: a token bucket of events per API key."""

from __future__ import annotations

import pytest

from ingest_gateway.rate_limit import EventRateLimiter
from ops_common.http.errors import RateLimited


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refusal_with_retry_after_then_refill() -> None:
    clock = Clock()
    limiter = EventRateLimiter(rate=100, burst=500, clock=clock)
    limiter.take("k", 500)
    with pytest.raises(RateLimited) as refused:
        limiter.take("k", 200)
    assert refused.value.status == 429
    assert refused.value.retry_after == 2  # 200 events at 100/s
    assert refused.value.events == 200
    clock.now = 2.0
    limiter.take("k", 200)


def test_keys_have_buckets_of_their_own() -> None:
    limiter = EventRateLimiter(rate=10, burst=10, clock=Clock())
    limiter.take("a", 10)
    limiter.take("b", 10)
    with pytest.raises(RateLimited):
        limiter.take("a", 1)


def test_a_request_larger_than_the_burst_waits_for_a_full_bucket_at_most() -> None:
    limiter = EventRateLimiter(rate=100, burst=50, clock=Clock())
    limiter.take("k", 50)
    with pytest.raises(RateLimited) as refused:
        limiter.take("k", 1000)
    assert refused.value.retry_after == 1  # never longer than refilling the whole burst


def test_a_refusal_spends_nothing() -> None:
    limiter = EventRateLimiter(rate=1, burst=10, clock=Clock())
    with pytest.raises(RateLimited):
        limiter.take("k", 11)
    limiter.take("k", 10)


def test_rate_zero_is_no_limit() -> None:
    limiter = EventRateLimiter(rate=0, burst=1, clock=Clock())
    for _ in range(100):
        limiter.take("k", 1_000_000)
