"""Unit tests for stream_workers.windows.aggregate: the exact, mergeable, bounded KPI state."""

from __future__ import annotations

import random
import statistics
from itertools import pairwise
from typing import Any

import orjson
import pytest
from support.tables import cases

from stream_workers.windows.aggregate import WindowAggregate, WindowResult

Event = tuple[bool, int | None]  # (ok, latency_ms)
INT32_MAX = 2_147_483_647
# Hand-written decimals are not exactly the float PostgreSQL computes; allow a few ulps.
ULPS = 1e-14


def ok(*latencies: int | None) -> list[Event]:
    return [(True, ms) for ms in latencies]


def failed(*latencies: int | None) -> list[Event]:
    return [(False, ms) for ms in latencies]


def aggregate_of(events: list[Event]) -> WindowAggregate:
    aggregate = WindowAggregate.initialise()
    for is_ok, latency_ms in events:
        aggregate.add(is_ok, latency_ms)
    return aggregate


def random_events(rng: random.Random, n: int, high: int, null_share: float) -> list[Event]:
    """n events, latencies uniform in [0, high], about null_share of them NULL."""
    return [
        (rng.random() >= 0.1, None if rng.random() < null_share else rng.randint(0, high))
        for _ in range(n)
    ]


# p95 by hand: n latencies, pos = 0.95 * (n - 1), interpolate between the floor(pos)-th and
# ceil(pos)-th (0-based) sorted values.
HAND_COMPUTED = [
    # pos 18.05: sorted[18] = 19, sorted[19] = 20 -> 19.05; failures 5,10,15,20; avg 210/20.
    ("one-to-twenty", [(i % 5 != 0, i) for i in range(1, 21)], 20, 10.5, 19.05, 0.2),
    ("single-value", ok(42), 1, 42.0, 42.0, 0.0),  # pos 0
    ("two-values", ok(10) + failed(20), 2, 15.0, 19.5, 0.5),  # pos 0.95: 10 + 0.95 * 10
    ("all-null-latency", ok(None) + failed(None, None), 3, None, None, 0.6666666666666666),
    # latencies [10, 20, 30]: pos 1.9 -> 20 + 0.9 * 10; avg 60 / 3
    ("null-latency-mixed-in", ok(10) + failed(None) + ok(20) + failed(30), 4, 20.0, 29.0, 0.5),
    ("repeated-values", ok(1, 2, 2, 2, 3), 5, 2.0, 2.8, 0.0),  # pos 3.8: 2 + 0.8 * (3 - 2)
    ("all-equal", ok(5, 5, 5, 5), 4, 5.0, 5.0, 0.0),
    # pos 18.05: sorted[18] = 2 is the first past the eighteen 1s; sorted[19] = 3; avg 23/20.
    ("lo-just-past-a-run", ok(*[1] * 18, 2, 3), 20, 1.15, 2.05, 0.0),
    # pos 18.05: sorted[18] = 1 is the last of the nineteen 1s; sorted[19] = 3; avg 22/20.
    ("lo-at-end-of-a-run", ok(*[1] * 19, 3), 20, 1.1, 1.1, 0.0),
    # pos 19.0 exactly: sorted[19] = 7, the 1000 at sorted[20] gets no weight; avg 1140/21.
    ("integral-pos", ok(*[7] * 20, 1000), 21, 54.285714285714285, 7.0, 0.0),
    ("one-to-hundred", ok(*range(1, 101)), 100, 50.5, 95.05, 0.0),  # pos 94.05: 95 + 0.05
    ("int32-max-pair", ok(INT32_MAX - 1, INT32_MAX), 2, 2147483646.5, 2147483646.95, 0.0),
    # pos 0.95: 0.95 * 2147483647 = 2147483647 - 107374182.35
    ("zero-and-int32-max", ok(0, INT32_MAX), 2, 1073741823.5, 2040109464.65, 0.0),
    ("int32-max-sum-overflows-int32", ok(*[INT32_MAX] * 3), 3, 2147483647.0, 2147483647.0, 0.0),
    ("all-failed", failed(100, 200), 2, 150.0, 195.0, 1.0),  # pos 0.95: 100 + 0.95 * 100
]


@pytest.mark.parametrize(("events", "total", "avg", "p95", "failure_rate"), cases(HAND_COMPUTED))
def test_result_matches_hand_computed(
    events: list[Event], total: int, avg: float | None, p95: float | None, failure_rate: float
) -> None:
    result = aggregate_of(events).result()
    assert result.total == total
    assert result.avg_latency_ms == (None if avg is None else pytest.approx(avg, rel=ULPS))
    assert result.p95_latency_ms == (None if p95 is None else pytest.approx(p95, rel=ULPS))
    assert result.failure_rate == pytest.approx(failure_rate, rel=ULPS)


def test_empty_aggregate() -> None:
    aggregate = WindowAggregate.initialise()
    assert aggregate == WindowAggregate(0, 0, 0, 0, {})
    assert aggregate.result() == WindowResult(0, None, None, 0.0)
    assert aggregate.state_size() == 4


def test_add_counts_null_latency_in_total_only() -> None:
    aggregate = aggregate_of(ok(7, None) + failed(None, 7, 9))
    assert aggregate == WindowAggregate(
        total=5, failures=3, latency_count=3, latency_sum=23, latency_histogram={7: 2, 9: 1}
    )
    assert aggregate.state_size() == 4 + 2 * 2


ORACLE = [  # (id, seed, events, latency high, NULL share)
    ("one-event", 1, 1, 5000, 0.0),
    ("two-events", 2, 2, 5000, 0.0),
    ("three-events", 3, 3, 100, 0.0),
    ("twenty-one", 4, 21, 50, 0.2),
    ("small-range-many-ties", 5, 1000, 10, 0.2),
    ("typical", 6, 2000, 5000, 0.1),
    ("mostly-null", 7, 300, 5000, 0.9),
    ("int32-range", 8, 1500, INT32_MAX, 0.3),
    ("large", 9, 20_000, 60_000, 0.05),
]


@pytest.mark.parametrize(("seed", "n", "high", "null_share"), cases(ORACLE))
def test_result_matches_statistics_oracle(seed: int, n: int, high: int, null_share: float) -> None:
    events = random_events(random.Random(seed), n, high, null_share)
    values = [ms for _, ms in events if ms is not None]
    assert values, "the seed must give at least one latency"
    # quantiles' "inclusive" method interpolates at (n - 1) * p, as percentile_cont does, but
    # needs two points.
    if len(values) == 1:
        p95 = float(values[0])
    else:
        p95 = statistics.quantiles(values, n=20, method="inclusive")[18]

    result = aggregate_of(events).result()

    assert result.total == n
    assert result.failure_rate == sum(not is_ok for is_ok, _ in events) / n
    assert result.avg_latency_ms == pytest.approx(statistics.fmean(values), rel=1e-12)
    assert result.p95_latency_ms == pytest.approx(p95, rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_merging_chunks_equals_aggregating_everything(seed: int) -> None:
    rng = random.Random(seed)
    events = random_events(rng, rng.randint(1, 2000), rng.choice([20, 5000]), 0.2)
    cuts = sorted(rng.choices(range(len(events) + 1), k=rng.randint(0, 12)))  # empty chunks too
    bounds = [0, *cuts, len(events)]
    chunks = [aggregate_of(events[a:b]) for a, b in pairwise(bounds)]
    snapshots = [chunk.to_json() for chunk in chunks]

    merged = WindowAggregate.initialise()
    for chunk in chunks:
        merged.merge(chunk)

    whole = aggregate_of(events)
    assert merged == whole
    assert merged.result() == whole.result()
    assert [chunk.to_json() for chunk in chunks] == snapshots  # merge leaves its argument alone


def test_merge_is_in_place_and_adds_counts() -> None:
    aggregate = aggregate_of(ok(5, None) + failed(7))
    aggregate.merge(aggregate_of(failed(5, None) + ok(9)))
    assert aggregate == WindowAggregate(
        total=6, failures=3, latency_count=4, latency_sum=26, latency_histogram={5: 2, 7: 1, 9: 1}
    )


def _seeded(seed: int, n: int, high: int) -> WindowAggregate:
    return aggregate_of(random_events(random.Random(seed), n, high, 0.2))


ROUND_TRIPS = [
    ("empty", WindowAggregate.initialise()),
    ("null-latencies-only", aggregate_of(ok(None) + failed(None))),
    ("int32-extremes", aggregate_of(ok(0, INT32_MAX, INT32_MAX) + failed(1))),
    ("random-small", _seeded(11, 50, 20)),
    ("random-large", _seeded(12, 5000, INT32_MAX)),
]


@pytest.mark.parametrize("aggregate", cases(ROUND_TRIPS))
def test_json_round_trip(aggregate: WindowAggregate) -> None:
    data = aggregate.to_json()
    through_orjson = orjson.loads(orjson.dumps(data))

    assert through_orjson == data
    assert WindowAggregate.from_json(data) == aggregate
    restored = WindowAggregate.from_json(through_orjson)
    assert restored == aggregate
    assert restored.result() == aggregate.result()
    pairs = through_orjson["latency_histogram"]
    assert pairs == sorted(pairs)
    assert all(type(ms) is int and type(count) is int for ms, count in pairs)


CORRUPT = [
    ("latency-count-too-high", {"latency_count": 4}),
    ("latency-count-too-low", {"latency_count": 2}),
    ("latency-sum-off", {"latency_sum": 31}),
    ("histogram-entry-missing", {"latency_histogram": [[10, 1], [20, 1]]}),
]


@pytest.mark.parametrize("override", cases(CORRUPT))
def test_from_json_rejects_counts_that_disagree_with_histogram(override: dict[str, Any]) -> None:
    data = {**aggregate_of(ok(10, 20) + failed(None, 0)).to_json(), **override}
    with pytest.raises(ValueError, match="disagree"):
        WindowAggregate.from_json(data)


def _add_all(aggregate: WindowAggregate, latencies: list[int]) -> None:
    add = aggregate.add  # a bound-method lookup per event would be a third of the loop
    for ms in latencies:
        add(ms % 7 != 0, ms)


def test_state_is_bounded_by_distinct_latencies_not_events() -> None:
    rng = random.Random(2025)
    distinct = range(5000)
    aggregate = WindowAggregate.initialise()

    _add_all(aggregate, rng.choices(distinct, k=1_000_000))
    assert len(aggregate.latency_histogram) == len(distinct), "the seed must cover every value"
    size_after_first = aggregate.state_size()
    assert size_after_first <= 4 + 2 * len(distinct)

    _add_all(aggregate, rng.choices(distinct, k=1_000_000))
    assert aggregate.state_size() == size_after_first
    assert aggregate.total == aggregate.latency_count == 2_000_000
    assert sum(aggregate.latency_histogram.values()) == 2_000_000
