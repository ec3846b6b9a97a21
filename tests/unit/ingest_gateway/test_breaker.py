"""Unit tests for ingest_gateway.breaker: open only when Kafka does not answer, probe at a
bounded rate while open, close on the first answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from ingest_gateway.breaker import KafkaBreaker


class Probe:
    """Answers from a script (the last one repeats), counting the calls."""

    def __init__(self, answers: Iterable[bool]) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def __call__(self) -> bool:
        self.calls += 1
        return self.answers[min(self.calls, len(self.answers)) - 1]


async def settle(breaker: KafkaBreaker, timeout: float = 2.0) -> None:
    """Wait until the probe loop ended (Kafka answered)."""
    watcher = breaker._watcher
    assert watcher is not None
    async with asyncio.timeout(timeout):
        await watcher


async def test_a_failed_produce_while_kafka_answers_changes_nothing() -> None:
    probe, changes = Probe([True]), []
    breaker = KafkaBreaker(probe, interval_s=0.01, on_change=changes.append)
    breaker.produce_failed()
    await settle(breaker)
    assert probe.calls == 1
    assert not breaker.is_open
    assert changes == []


async def test_opens_while_kafka_is_silent_and_closes_on_its_first_answer() -> None:
    probe, changes = Probe([False, False, False, True]), []
    breaker = KafkaBreaker(probe, interval_s=0.01, on_change=changes.append)
    breaker.produce_failed()
    await asyncio.sleep(0)  # the probe runs in the background
    assert breaker.is_open
    await settle(breaker)
    assert probe.calls == 4
    assert not breaker.is_open
    assert changes == [True, False]


async def test_one_probe_loop_however_many_requests_fail() -> None:
    probe = Probe([False])
    breaker = KafkaBreaker(probe, interval_s=0.05)
    for _ in range(100):
        breaker.produce_failed()
        await asyncio.sleep(0)
    await asyncio.sleep(0.22)
    # 0.27 s at one probe per 0.05 s: the rate is bounded by the interval, not by the traffic.
    assert 2 <= probe.calls <= 7  # fewer only if a loaded machine oversleeps
    await breaker.stop()


async def test_stop_ends_the_probe_loop_and_later_failures_start_none() -> None:
    probe = Probe([False])
    breaker = KafkaBreaker(probe, interval_s=10)
    breaker.produce_failed()
    await asyncio.sleep(0)
    assert breaker.checking
    async with asyncio.timeout(1):  # does not wait out the 10 s interval
        await breaker.stop()
    assert not breaker.checking
    breaker.produce_failed()
    assert not breaker.checking
    assert probe.calls == 1


async def test_a_probe_that_raises_counts_as_no_answer() -> None:
    calls = 0

    async def probe() -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("broken probe")
        return True

    breaker = KafkaBreaker(probe, interval_s=0.01)
    breaker.produce_failed()
    await settle(breaker)
    assert calls == 2
    assert not breaker.is_open
