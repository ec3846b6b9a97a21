"""Worker SIGKILL: the only worker is killed several times during the load and restarted at
once each time; nothing acknowledged may be lost or stored twice."""

from __future__ import annotations

import asyncio
import signal

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
    wait_exit,
    worker_counters,
)


async def worker_sigkill(
    env: Environment, *, events: int = 100_000, rate: float = 2000.0, kills: int = 3
) -> ScenarioResult:
    """SIGKILL the only worker `kills` times during the load; restart it each time."""
    async with scenario_run(env, "worker-sigkill", 0) as run:
        timeline, worker = run.timeline, run.worker
        spec = LoadSpec(new_app("wk"), events, rate, seed=1)
        record, load = await run.start_load(spec)
        duration = events / rate
        restart_ready: list[float] = []
        try:
            for i in range(kills):
                await sleep_until(record.started + duration * (i + 1) / (kills + 1))
                killed = timeline.mark(f"worker SIGKILL #{i + 1}")
                worker.signal(signal.SIGKILL)
                await asyncio.to_thread(wait_exit, worker)
                worker = await asyncio.to_thread(run.pipeline.start_worker, run.worker_port)
                ready = timeline.mark(f"restarted worker ready #{i + 1}")
                restart_ready.append(round(ready - killed, 1))
            await load
            timeline.at(record.finished, "last answer of the load")
        finally:
            await cancel(load)
        counts, timings = await settle(env, record)
        counters = await worker_counters([run.worker_port])
    result = run.result(
        f"Worker SIGKILL x{kills}, restarted each time",
        f"SIGKILL of the only `python -m stream_workers` {kills} times during the load; a new "
        "worker started at once each time (it is ready once the dead member's session expired "
        "and the partitions were reassigned)",
        record,
        counts,
    )
    load_end = record.finished
    kills_during_load = sum(
        1 for t, what in timeline.entries if what.startswith("worker SIGKILL") and t < load_end
    )
    result.timings |= timings | {"kill to restarted worker ready, s": restart_ready}
    result.facts = {
        "kills during the load": kills_during_load,
        "last worker's counters": counters,
    }
    result.checks.append(
        Check(
            f"all {kills} kills happened while the load ran",
            kills_during_load == kills,
            f"{kills_during_load} of {kills} kills before the last answer of the load",
        )
    )
    return result
