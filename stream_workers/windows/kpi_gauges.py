"""Prometheus gauges of the latest closed window per series, with a cap on series."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from .aggregate import WindowResult
from .rollup_store import WindowKey

_LABELS = ["app", "env", "event"]


class KpiGauges:
    """total / avg / p95 / failure ratio of each series' newest closed window.

    At most `max_keys` series are exported; further ones are counted, not labelled, so the
    label cardinality stays bounded whatever clients send.
    """

    def __init__(self, registry: CollectorRegistry, max_keys: int) -> None:
        self._max_keys = max_keys
        self._latest: dict[tuple[str, str, str], int] = {}
        self.total = Gauge(
            "ops_window_total",
            "Events in the newest closed 5-minute window.",
            _LABELS,
            registry=registry,
        )
        self.avg = Gauge(
            "ops_window_avg_latency_ms",
            "Average latency of that window.",
            _LABELS,
            registry=registry,
        )
        self.p95 = Gauge(
            "ops_window_p95_latency_ms", "p95 latency of that window.", _LABELS, registry=registry
        )
        self.failure = Gauge(
            "ops_window_failure_ratio", "Failure ratio of that window.", _LABELS, registry=registry
        )
        self.bucket = Gauge(
            "ops_window_bucket_timestamp_seconds",
            "Start of the window the other ops_window_* gauges show.",
            _LABELS,
            registry=registry,
        )
        self.dropped_keys = Counter(
            "ops_window_gauge_keys_dropped",
            "Closed windows not exported because of the key cap.",
            registry=registry,
        )

    def observe(self, key: WindowKey, result: WindowResult) -> None:
        """Show `result` if it is the series' newest closed window."""
        series = (key.app, key.env, key.event)
        if series not in self._latest and len(self._latest) >= self._max_keys:
            self.dropped_keys.inc()
            return
        if self._latest.get(series, -1) > key.bucket:
            return  # a late correction of an older window; the gauges show the newest
        self._latest[series] = key.bucket
        self.total.labels(*series).set(result.total)
        self.avg.labels(*series).set(_nan_if_none(result.avg_latency_ms))
        self.p95.labels(*series).set(_nan_if_none(result.p95_latency_ms))
        self.failure.labels(*series).set(result.failure_rate)
        self.bucket.labels(*series).set(key.bucket)


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value
