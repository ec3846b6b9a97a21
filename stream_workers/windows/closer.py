"""Closing windows: when wall-clock time passes a window's end plus the grace, its result is
checked against the stored rows, upserted into ops_metrics_5min and emitted to Kafka."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import faust
import orjson

from ops_common.postgres_pool import UNAVAILABLE

from ..metrics import WorkerMetrics
from .aggregate import WindowResult
from .buckets import bucket_datetime
from .kpi_gauges import KpiGauges
from .rollup_store import RollupStore, WindowKey
from .window_table import WindowState, WindowTable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class _Closing:
    state: WindowState
    version: int  #: the state's version when the close began
    result: WindowResult  #: what the stream computed


class WindowCloser:
    """One pass closes every due window of this worker's partitions."""

    def __init__(
        self,
        windows: WindowTable,
        rollup: RollupStore,
        topic: faust.TopicT,
        metrics: WorkerMetrics,
        gauges: KpiGauges,
    ) -> None:
        self._windows = windows
        self._rollup = rollup
        self._topic = topic
        self._metrics = metrics
        self._gauges = gauges

    async def close_due(self, partitions: set[int]) -> int:
        """Close what is due; returns how many windows were written. A database outage
        skips the pass (the windows stay due) rather than stopping the worker."""
        self._metrics.windows_dropped.inc(self._windows.expire(partitions))
        closing = [
            _Closing(state, state.version, state.aggregate.result())
            for state in self._windows.due(partitions)
        ]
        if not closing:
            return 0
        try:
            final = await self._reconcile(closing)
            await self._rollup.upsert(
                [(c.state.key, final[c.state.key]) for c in closing if c.state.key in final]
            )
        except UNAVAILABLE as exc:
            log.warning("closing windows postponed: PostgreSQL unavailable (%r)", exc)
            return 0
        await self._emit(
            [(c.state.key, final[c.state.key]) for c in closing if c.state.key in final]
        )
        for c in closing:
            c.state.closed_version = c.version
            self._windows.put(c.state)
            if c.state.key in final:
                self._gauges.observe(c.state.key, final[c.state.key])
        self._metrics.windows_closed.inc(len(closing))
        self._metrics.open_windows.set(self._windows.count())
        return len(closing)

    async def _reconcile(self, closing: Sequence[_Closing]) -> dict[WindowKey, WindowResult]:
        # The rows are the truth (they are de-duplicated by id); the stream's numbers must
        # match them, and where they do not (a client retry with the same id, a lost state
        # update) the rows win and the correction is counted.
        view = await self._rollup.read_view([c.state.key for c in closing])
        for c in closing:
            stored = view.get(c.state.key)
            if stored is None or not same_result(stored, c.result):
                self._metrics.window_corrections.inc()
                log.info("window %s corrected: stream %s, rows %s", c.state.key, c.result, stored)
        return view

    async def _emit(self, windows: Sequence[tuple[WindowKey, WindowResult]]) -> None:
        pending = [
            await self._topic.send(
                key=f"{k.app}|{k.env}|{k.event}".encode(),
                value=orjson.dumps(
                    {
                        "bucket": bucket_datetime(k.bucket).isoformat(),
                        "app": k.app,
                        "env": k.env,
                        "event": k.event,
                        "total": r.total,
                        "avg_latency_ms": r.avg_latency_ms,
                        "p95_latency_ms": r.p95_latency_ms,
                        "failure_rate": r.failure_rate,
                    }
                ),
            )
            for k, r in windows
        ]
        await asyncio.gather(*pending)


def same_result(a: WindowResult, b: WindowResult, rel: float = 1e-9) -> bool:
    """Equal as the contract defines it: total exactly, the rest to `rel` relative."""
    return a.total == b.total and all(
        _close(x, y, rel)
        for x, y in (
            (a.avg_latency_ms, b.avg_latency_ms),
            (a.p95_latency_ms, b.p95_latency_ms),
            (a.failure_rate, b.failure_rate),
        )
    )


def _close(x: float | None, y: float | None, rel: float) -> bool:
    if x is None or y is None:
        return x is y
    return math.isclose(x, y, rel_tol=rel, abs_tol=0.0)
