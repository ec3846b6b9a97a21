"""Gateway SIGKILL: the gateway is killed mid-load while requests are in flight and restarted
on the same port; clients retry with the same ids, so every event is stored once."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter

from ..load import LoadSpec, wait_in_flight
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
)


async def gateway_sigkill(
    env: Environment, *, events: int = 30_000, rate: float = 1500.0, kills: int = 2
) -> ScenarioResult:
    """SIGKILL the gateway `kills` times mid-load and restart it; clients retry with the same
    ids, so every event is stored once."""
    async with scenario_run(env, "gateway-sigkill", 4) as run:
        timeline, gateway = run.timeline, run.gateway
        spec = LoadSpec(new_app("gwkill"), events, rate, seed=5)
        record, load = await run.start_load(spec)
        duration = events / rate
        downtime: list[float] = []
        spans: list[tuple[float, float]] = []
        try:
            for i in range(kills):
                await sleep_until(record.started + duration * (i + 1) / (kills + 1))
                await wait_in_flight(record, 1, timeout=5)
                killed = timeline.mark(f"gateway SIGKILL #{i + 1}")
                gateway.signal(signal.SIGKILL)
                await asyncio.to_thread(wait_exit, gateway)
                gateway = await asyncio.to_thread(run.pipeline.start_gateway, run.gateway_port)
                ready = timeline.mark(f"restarted gateway ready #{i + 1}")
                downtime.append(round(ready - killed, 1))
                spans.append((killed, ready))
            await load
            timeline.at(record.finished, "last answer of the load")
        finally:
            await cancel(load)
        counts, timings = await settle(env, record)
    result = run.result(
        f"Gateway SIGKILL x{kills}, clients retry with the same ids",
        f"SIGKILL of `python -m ingest_gateway` {kills} times mid-load (each while a request was "
        "in flight), restarted on the same port; requests in flight get no "
        "answer and are retried with the same event ids",
        record,
        counts,
    )
    in_flight: Counter[str] = Counter()
    for killed, _ready in spans:
        in_flight.update(
            str(a.status) if a.status else f"no answer: {a.error}"
            for a in record.answers
            if a.sent < killed <= a.done
        )
    result.timings |= timings | {"kill to restarted gateway ready, s": downtime}
    result.facts = {"requests in flight at the kills": dict(in_flight)}
    result.checks.append(
        Check(
            "the kills hit requests in flight",
            sum(in_flight.values()) > 0,
            f"{sum(in_flight.values())} requests were in flight: {dict(in_flight)}",
        )
    )
    return result
