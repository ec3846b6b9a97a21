"""The 5-minute KPI aggregate: exact, mergeable, and bounded in size.

It reproduces what the `v_ops_5min` view computes for one (bucket, app, env, event) group, but
incrementally: `initialise`, `add` per event, `merge` partial aggregates, `result` at any time.
Latencies are integer milliseconds, so a histogram of distinct values keeps the p95 exact while
its size is bounded by the number of distinct latencies, not the number of events.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

_P95 = 0.95


@dataclass(frozen=True, slots=True)
class WindowResult:
    """The KPIs of one window, as the `v_ops_5min` view reports them."""

    total: int
    """Number of events in the window, NULL latencies included."""
    avg_latency_ms: float | None
    """Mean of the non-NULL latencies; None when every latency is NULL."""
    p95_latency_ms: float | None
    """`percentile_cont(0.95)` of the non-NULL latencies; None when every latency is NULL."""
    failure_rate: float
    """Share of events with ok = false, in [0, 1]; 0.0 for an empty window."""


@dataclass(slots=True)
class WindowAggregate:
    """Running counts for one window; state grows with distinct latencies, not with events."""

    total: int = 0
    failures: int = 0
    latency_count: int = 0
    latency_sum: int = 0
    latency_histogram: dict[int, int] = field(default_factory=dict)

    @classmethod
    def initialise(cls) -> WindowAggregate:
        """An empty aggregate."""
        return cls()

    def add(self, ok: bool, latency_ms: int | None) -> None:
        """Count one event; a NULL latency counts in total and failures only, as in SQL."""
        self.total += 1
        if not ok:
            self.failures += 1
        if latency_ms is not None:
            self.latency_count += 1
            self.latency_sum += latency_ms
            self.latency_histogram[latency_ms] = self.latency_histogram.get(latency_ms, 0) + 1

    def merge(self, other: WindowAggregate) -> None:
        """Add `other`'s counts into this aggregate (e.g. one batch's delta)."""
        self.total += other.total
        self.failures += other.failures
        self.latency_count += other.latency_count
        self.latency_sum += other.latency_sum
        histogram = self.latency_histogram
        for ms, count in other.latency_histogram.items():
            histogram[ms] = histogram.get(ms, 0) + count

    def result(self) -> WindowResult:
        """The window's KPIs, equal to what `v_ops_5min` computes over the same events."""
        n = self.latency_count
        if n == 0:
            return WindowResult(self.total, None, None, self._failure_rate())
        # Same float steps as PostgreSQL's percentile_cont, so the rounding matches too.
        pos = _P95 * (n - 1)
        lo, hi = math.floor(pos), math.ceil(pos)
        v_lo, v_hi = self._nth_values(lo, hi)
        p95 = float(v_lo) + (pos - lo) * (float(v_hi) - float(v_lo))
        return WindowResult(self.total, self.latency_sum / n, p95, self._failure_rate())

    def state_size(self) -> int:
        """How many numbers the state holds: 4 counters plus 2 per distinct latency."""
        return 4 + 2 * len(self.latency_histogram)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict; the histogram is a sorted [ms, count] list since JSON keys are
        strings."""
        return {
            "total": self.total,
            "failures": self.failures,
            "latency_count": self.latency_count,
            "latency_sum": self.latency_sum,
            "latency_histogram": [[ms, c] for ms, c in sorted(self.latency_histogram.items())],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WindowAggregate:
        """The aggregate `to_json` produced; ValueError if its latency counters disagree with
        its histogram (a corrupt state would otherwise give a wrong p95 silently)."""
        histogram: dict[int, int] = {}
        for ms, count in data["latency_histogram"]:
            histogram[int(ms)] = histogram.get(int(ms), 0) + int(count)
        aggregate = cls(
            total=int(data["total"]),
            failures=int(data["failures"]),
            latency_count=int(data["latency_count"]),
            latency_sum=int(data["latency_sum"]),
            latency_histogram=histogram,
        )
        counted = sum(histogram.values())
        summed = sum(ms * count for ms, count in histogram.items())
        if (counted, summed) != (aggregate.latency_count, aggregate.latency_sum):
            raise ValueError(
                f"latency_count/latency_sum {aggregate.latency_count}/{aggregate.latency_sum}"
                f" disagree with the histogram's {counted}/{summed}"
            )
        return aggregate

    def _failure_rate(self) -> float:
        return self.failures / self.total if self.total else 0.0

    def _nth_values(self, lo: int, hi: int) -> tuple[int, int]:
        """The lo-th and hi-th (0-based) latencies in sorted order, read off the histogram."""
        v_lo: int | None = None
        seen = 0
        for ms in sorted(self.latency_histogram):
            seen += self.latency_histogram[ms]
            if v_lo is None and lo < seen:
                v_lo = ms
            if hi < seen:
                assert v_lo is not None  # lo <= hi, so lo was reached no later than hi
                return v_lo, ms
        raise ValueError(
            f"histogram holds {seen} latencies, latency_count says {self.latency_count}"
        )
