"""Every Prometheus metric the workers export, registered on an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2000, 5000)


class WorkerMetrics:
    """Consume, insert and dead-letter counters; labels bounded to a fixed reason set."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.consumed = Counter(
            "worker_events_consumed", "Messages taken from the telemetry topic.", registry=registry
        )
        self.inserted = Counter(
            "worker_events_inserted", "Rows newly stored in ops_metrics.", registry=registry
        )
        self.duplicates = Counter(
            "worker_events_duplicate",
            "Events whose id was already stored (client or producer retries).",
            registry=registry,
        )
        self.dead_lettered = Counter(
            "worker_events_dead_lettered",
            "Messages moved to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.db_retries = Counter(
            "worker_db_retries", "Insert attempts that failed and were retried.", registry=registry
        )
        self.batch_retries = Counter(
            "worker_batch_retries",
            "Batches whose persist step failed and was retried (anything but an insert that"
            " PostgreSQL's absence failed, which worker_db_retries counts).",
            registry=registry,
        )
        self.offset_holes = Counter(
            "worker_offset_holes",
            "Offsets the stream skipped (never handed to the persist agent); each one is"
            " fetched again by seeking back (stream_workers/offset_holes.py).",
            registry=registry,
        )
        self.insert_duration = Histogram(
            "worker_insert_batch_duration_seconds",
            "Duration of one batch INSERT.",
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.window_events_too_late = Counter(
            "worker_window_events_too_late",
            "Stored events too old for any open window (beyond retention).",
            registry=registry,
        )
        self.window_events_replayed = Counter(
            "worker_window_events_replayed",
            "Redelivered events a window had already counted (skipped).",
            registry=registry,
        )
        self.windows_closed = Counter(
            "worker_windows_closed", "Window closes written to the rollup.", registry=registry
        )
        self.window_corrections = Counter(
            "worker_window_corrections",
            "Closed windows whose stream result differed from the stored rows (rows won).",
            registry=registry,
        )
        self.windows_dropped = Counter(
            "worker_windows_dropped",
            "Window states dropped: past retention, or their partition moved away.",
            registry=registry,
        )
        self.open_windows = Gauge(
            "worker_windows_held", "Window states this worker holds.", registry=registry
        )
        self.insert_size = Histogram(
            "worker_insert_batch_size",
            "Rows per batch INSERT.",
            buckets=_SIZE_BUCKETS,
            registry=registry,
        )
