"""Scaling the workers 1 -> 2 -> 1 under load: a second worker joins the consumer group and the
first leaves with SIGTERM; the group splits and re-takes the partitions without losing or
doubling an event."""

from __future__ import annotations

import asyncio

from ..load import LoadSpec
from .common import (
    Check,
    Environment,
    ScenarioResult,
    cancel,
    new_app,
    scenario_run,
    settle,
    sleep_until,
    worker_counters,
)


async def scale_workers(
    env: Environment, *, events: int = 60_000, rate: float = 1500.0, together_s: float = 5.0
) -> ScenarioResult:
    """Start a second worker a quarter into the load, SIGTERM the first at two thirds (or
    `together_s` after the second is ready, if that is later)."""
    async with scenario_run(env, "scale-workers", 6) as run:
        timeline, first = run.timeline, run.worker
        first_port, second_port = run.worker_port, env.ports.worker(7)
        spec = LoadSpec(new_app("scale"), events, rate, seed=7)
        record, load = await run.start_load(spec)
        duration = events / rate
        try:
            await sleep_until(record.started + duration * 0.25)
            joined = timeline.mark("second worker starting")
            await asyncio.to_thread(run.pipeline.start_worker, second_port)
            ready = timeline.mark("second worker ready (partitions split)")
            # Both run for at least `together_s`, however long the second took to get ready.
            await sleep_until(max(record.started + duration * 2 / 3, ready + together_s))
            first_counters = await worker_counters([first_port])
            second_mid = await worker_counters([second_port])
            left = timeline.mark("first worker SIGTERM")
            code = await asyncio.to_thread(first.stop, 30)
            gone = timeline.mark(f"first worker exited with {code}")
            await load
            timeline.at(record.finished, "last answer of the load")
        finally:
            await cancel(load)
        counts, timings = await settle(env, record)
        second_counters = await worker_counters([second_port])
    result = run.result(
        "Workers scaled 1 → 2 → 1 under load",
        "a second `python -m stream_workers` joins the group a quarter into the load; the "
        "first is stopped with SIGTERM at two thirds",
        record,
        counts,
    )
    consumed_first = first_counters.get("worker_events_consumed_total", 0)
    consumed_second_mid = second_mid.get("worker_events_consumed_total", 0)
    result.timings |= timings | {
        "second worker start to ready, s": round(ready - joined, 1),
        "first worker SIGTERM to exit, s": round(gone - left, 1),
    }
    result.facts = {
        "first worker exit code": code,
        "events consumed by the first worker (before SIGTERM)": consumed_first,
        "events consumed by the second worker (before / after the first left)": [
            consumed_second_mid,
            second_counters.get("worker_events_consumed_total", 0),
        ],
        "second worker counters at the end": second_counters,
    }
    result.checks += [
        Check(
            "both workers consumed while both ran (the group split the partitions)",
            consumed_first > 0 and consumed_second_mid > 0,
            f"first {consumed_first:.0f}, second {consumed_second_mid:.0f} events",
        ),
        Check(
            "the first worker leaves cleanly on SIGTERM (exit code 0)",
            code == 0,
            f"exit code {code} after {gone - left:.1f} s",
        ),
    ]
    return result
