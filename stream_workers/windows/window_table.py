"""The open windows, held in a Faust table backed by a changelog topic.

One table entry per (series, bucket). Entries are written to the changelog partition of the
events' own partition, so a worker that takes over a partition recovers exactly its windows.
Each entry remembers the highest source offset it has applied: a batch redelivered after a
crash (state written, offsets not yet committed) is recognised and not counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import faust

from ..decode import ConsumedEvent
from ..metrics import WorkerMetrics
from .aggregate import WindowAggregate
from .buckets import BUCKET_SECONDS, bucket_start
from .rollup_store import WindowKey

Clock = Callable[[], float]


@dataclass(slots=True)
class WindowState:
    """What the table keeps for one window."""

    key: WindowKey
    partition: int  #: source partition of every event of this window
    max_offset: int = -1  #: highest source offset applied
    version: int = 0  #: bumped by every change
    closed_version: int = -1  #: version last written to the rollup
    aggregate: WindowAggregate = field(default_factory=WindowAggregate.initialise)

    @property
    def changed_since_close(self) -> bool:
        """True when the rollup does not yet hold this version."""
        return self.version > self.closed_version

    def to_json(self) -> dict[str, Any]:
        """The table value."""
        k = self.key
        return {
            "key": [k.app, k.env, k.event, k.bucket],
            "partition": self.partition,
            "max_offset": self.max_offset,
            "version": self.version,
            "closed_version": self.closed_version,
            "aggregate": self.aggregate.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WindowState:
        """Inverse of `to_json`."""
        app, env, event, bucket = data["key"]
        return cls(
            key=WindowKey(app, env, event, bucket),
            partition=data["partition"],
            max_offset=data["max_offset"],
            version=data["version"],
            closed_version=data["closed_version"],
            aggregate=WindowAggregate.from_json(data["aggregate"]),
        )


def table_key(key: WindowKey) -> str:
    """The table key of a window (JSON-serialized in the changelog, like the value)."""
    return f"{key.app}|{key.env}|{key.event}|{key.bucket}"


class WindowTable:
    """Applies batches to the windows and finds the ones due to close."""

    def __init__(
        self,
        table: faust.types.TableT,
        metrics: WorkerMetrics,
        *,
        grace_s: float,
        retention_s: float,
        clock: Clock = time.time,
    ) -> None:
        self._table = table
        self._metrics = metrics
        self._grace_s = grace_s
        self._retention_s = retention_s
        self._clock = clock

    def apply(self, consumed: Sequence[ConsumedEvent]) -> None:
        """Add a stored batch to its windows: one table write per window touched."""
        oldest_bucket = self._clock() - self._retention_s - BUCKET_SECONDS
        touched: dict[WindowKey, WindowState] = {}
        for item in consumed:
            e = item.event
            key = WindowKey(e.app, e.env, e.event, bucket_start(e.ts))
            if key.bucket < oldest_bucket:
                self._metrics.window_events_too_late.inc()
                continue
            state = touched.get(key) or self.get(key) or WindowState(key, item.partition)
            if item.offset <= state.max_offset:
                self._metrics.window_events_replayed.inc()
                continue
            state.aggregate.add(e.ok, e.latency_ms)
            state.max_offset = item.offset
            touched[key] = state
        for state in touched.values():
            state.version += 1
            self.put(state)

    def due(self, partitions: set[int]) -> list[WindowState]:
        """Windows of `partitions` past their end + grace whose rollup is not current."""
        now = self._clock()
        return [
            state
            for state in self._states()
            if state.partition in partitions
            and state.changed_since_close
            and now >= state.key.bucket + BUCKET_SECONDS + self._grace_s
        ]

    def expire(self, partitions: set[int]) -> int:
        """Drop windows past retention (with a changelog tombstone) and, locally only, the
        windows of partitions this worker no longer owns. Returns how many were dropped."""
        horizon = self._clock() - self._retention_s - self._grace_s - BUCKET_SECONDS
        dropped = 0
        for state in list(self._states()):
            if state.partition not in partitions:
                self._table.data.pop(table_key(state.key), None)
            elif state.key.bucket < horizon:
                # raw None is a Kafka tombstone, as Faust's own deletes send it.
                self._table.send_changelog(
                    state.partition, table_key(state.key), None, value_serializer="raw"
                )
                self._table.data.pop(table_key(state.key), None)
            else:
                continue
            dropped += 1
        return dropped

    def get(self, key: WindowKey) -> WindowState | None:
        """The stored state of one window."""
        return self._load(table_key(key))

    def put(self, state: WindowState) -> None:
        """Store a window locally and in its partition's changelog."""
        self._table.send_changelog(state.partition, table_key(state.key), state.to_json())
        self._table.data[table_key(state.key)] = state

    def count(self) -> int:
        """How many windows this worker holds."""
        return len(self._table.data)

    def _states(self) -> Iterable[WindowState]:
        for key in list(self._table.data.keys()):
            state = self._load(key)
            if state is not None:
                yield state

    def _load(self, key: str) -> WindowState | None:
        # Locally the table holds WindowState objects; entries recovered from the changelog
        # arrive as JSON and are converted once, on first use.
        value = self._table.data.get(key)
        if value is None or isinstance(value, WindowState):
            return value
        state = WindowState.from_json(value)
        self._table.data[key] = state
        return state
