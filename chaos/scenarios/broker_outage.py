"""Broker outage: the only Kafka broker is stopped for a while during the load and started
again; while it is down the gateway answers 503 with Retry-After, and ingestion resumes by
itself once it is back."""

from __future__ import annotations

import asyncio
import time

from ..load import LoadSpec
from ..probes import RssSampler, metrics, pid_of
from .common import (
    Check,
    Environment,
    ScenarioResult,
    cancel,
    log_lines,
    new_app,
    scenario_run,
    settle,
    sleep_until,
)

INFLIGHT_GAUGE = "gateway_kafka_inflight_events"


async def _gauge(url: str, name: str, into: list[tuple[float, float]]) -> None:
    """Poll one gauge of a /metrics page every second until cancelled."""
    while True:
        found = await metrics(url, (name,))
        if name in found:
            into.append((time.monotonic(), found[name]))
        await asyncio.sleep(1.0)


def _last(samples: list[tuple[float, float]], before: float) -> float:
    """The last sampled value at or before `before` (0 without one)."""
    values = [v for t, v in samples if t <= before]
    return values[-1] if values else 0.0


async def broker_outage(
    env: Environment,
    *,
    rate: float = 1000.0,
    before_s: float = 10.0,
    outage_s: float = 30.0,
    after_s: float = 15.0,
    max_cpu_cores: float | None = None,
) -> ScenarioResult:
    """Stop the (single) broker for `outage_s` during the load; start it again.

    `max_cpu_cores`, when given, adds the claims that the gateway and the worker stay (nearly)
    idle while the broker is down: the CPU each used per second stays under that many cores."""
    tuning = env.services.tuning
    kafka = env.services.kafka
    events = int(rate * (before_s + outage_s + after_s))
    async with scenario_run(env, "broker-outage", 1) as run:
        timeline, gateway = run.timeline, run.gateway
        rss = RssSampler(lambda: pid_of(gateway))
        worker_use = RssSampler(lambda: pid_of(run.worker))
        sampling = [asyncio.create_task(sampler.run()) for sampler in (rss, worker_use)]
        inflight: list[tuple[float, float]] = []
        gauging = asyncio.create_task(
            _gauge(
                f"{run.pipeline.gateway_url(run.gateway_port)}/metrics", INFLIGHT_GAUGE, inflight
            )
        )
        spec = LoadSpec(new_app("broker"), events, rate, seed=2)
        record, load = await run.start_load(spec)
        stopped = False
        try:
            await sleep_until(record.started + before_s)
            lines_before = log_lines(gateway)
            worker_lines_before = log_lines(run.worker)
            stop_begin = timeline.mark("broker stop (SIGTERM) sent")
            stopped = True
            await asyncio.to_thread(kafka.stop)
            stop_done = timeline.mark("broker process exited")
            await sleep_until(stop_done + outage_s)
            start_begin = timeline.mark("broker starting")
            outage_lines = log_lines(gateway) - lines_before
            worker_outage_lines = log_lines(run.worker) - worker_lines_before
            await asyncio.to_thread(kafka.start)
            stopped = False
            start_done = timeline.mark("broker listening")
            await load
            timeline.at(record.finished, "last answer of the load")
        finally:
            await cancel(load, *sampling, gauging)
            if stopped:
                await asyncio.to_thread(kafka.start)
        counts, timings = await settle(env, record)
    result = run.result(
        f"Broker stopped for {outage_s:.0f} s",
        f"the only Kafka broker stopped (SIGTERM, controlled shutdown) {before_s:.0f} s into the "
        f"load, started again {outage_s:.0f} s after it exited; clients retry on 503 honouring "
        "Retry-After",
        record,
        counts,
    )
    down = record.statuses(stop_done, start_begin, answered_in_span=True)
    shutting_down = record.statuses(stop_begin, stop_done)
    answers_down = [a for a in record.answers if a.sent >= stop_done and a.done <= start_begin]
    with_retry_after = sum(1 for a in answers_down if a.status == 503 and a.retry_after)
    slowest = max((a.done - a.sent for a in answers_down), default=0.0)
    first_201 = record.first_ack_after(start_done)
    baseline = rss.last_mib(before=stop_begin)
    peak_down = rss.peak_mib(stop_done, start_begin)
    peak_after = rss.peak_mib(start_begin, None)
    third = outage_s / 3
    early = rss.peak_mib(stop_done, stop_done + third)
    late = rss.peak_mib(start_begin - third, start_begin)
    at_two_thirds = rss.last_mib(before=start_begin - third)
    cpu_down = rss.cpu_share(stop_done, start_begin)
    worker_cpu_down = worker_use.cpu_share(stop_done, start_begin)
    # Undelivered batches expire after the producer's request timeout (see
    # ingest_gateway/producer.py); only an outage longer than that can show RSS level off.
    expiry = max(tuning.produce_timeout_s * 4, 10.0)
    judge_plateau = outage_s >= expiry + 5
    result.statuses = dict(sorted(record.statuses().items()))
    result.timings |= timings | {
        "broker stop took, s": round(stop_done - stop_begin, 1),
        "broker start took, s": round(start_done - start_begin, 1),
        "slowest answer while down, s": round(slowest, 2),
        "broker listening to first 201, s": (
            round(first_201 - start_done, 1) if first_201 is not None else -1.0
        ),
    }
    result.facts = {
        "answers while the broker was down": dict(down),
        "answers during its controlled shutdown": dict(shutting_down),
        "503 answers with Retry-After while down": f"{with_retry_after} of {down.get('503', 0)}",
        "gateway RSS before / peak while down / peak after, MiB": [baseline, peak_down, peak_after],
        "gateway RSS peak, first / last third of the outage, MiB": [early, late],
        "gateway RSS every 5 s from the broker's exit, MiB": [
            rss.last_mib(before=stop_done + k) for k in range(0, int(outage_s) + 21, 5)
        ],
        "gateway in-flight events every 5 s from the broker's exit": [
            _last(inflight, stop_done + k) for k in range(0, int(outage_s) + 21, 5)
        ],
        "gateway in-flight events, peak while down": max(
            (v for t, v in inflight if stop_done <= t <= start_begin), default=0.0
        ),
        "gateway CPU while down, cores": cpu_down,
        "gateway CPU before the stop, cores": rss.cpu_share(record.started, stop_begin),
        "gateway log lines written while down": outage_lines,
        "worker CPU while down, cores": worker_cpu_down,
        "worker CPU before the stop, cores": worker_use.cpu_share(record.started, stop_begin),
        "worker log lines written while down": worker_outage_lines,
    }
    result.checks += [
        Check(
            "while the broker is down every answer is 503 (no 201, no 500, no dropped connection)",
            bool(down) and set(down) == {"503"},
            f"answers to requests sent after the broker exited and answered before it restarted:"
            f" {dict(down)}",
        ),
        Check(
            "every 503 carries Retry-After",
            with_retry_after == down.get("503", 0) and with_retry_after > 0,
            f"{with_retry_after} of {down.get('503', 0)}",
        ),
        Check(
            f"503 within the produce timeout ({tuning.produce_timeout_s:.0f} s) + 1 s",
            slowest <= tuning.produce_timeout_s + 1,
            f"slowest answer while down {slowest:.2f} s",
        ),
        Check(
            "gateway RSS bounded while down (peak < 2 x before; in an outage longer than the "
            "batch expiry it levels off: growth over its last third < 10 % of the RSS before)",
            peak_down < 2 * baseline
            and (not judge_plateau or late - at_two_thirds < 0.1 * baseline),
            f"before {baseline} MiB, peak while down {peak_down} MiB; {at_two_thirds} MiB two "
            f"thirds into the outage, peak of the last third {late} MiB"
            + ("" if judge_plateau else f" (outage shorter than the {expiry:.0f} s expiry + 5 s)"),
        ),
        Check(
            "ingestion resumes by itself once the broker is back",
            first_201 is not None,
            "first 201 "
            + (
                f"{first_201 - start_done:.1f} s after the broker listened"
                if first_201
                else "never"
            ),
        ),
    ]
    if max_cpu_cores is not None:
        result.checks += [
            Check(
                f"the {name} stays idle while the broker is down (CPU < {max_cpu_cores} core)",
                0 <= down_cpu < max_cpu_cores,
                f"{down_cpu} cores while down ({result.facts[f'{name} CPU before the stop, cores']}"
                f" before), {lines:,} log lines written in the {outage_s:.0f} s",
            )
            for name, down_cpu, lines in (
                ("gateway", cpu_down, outage_lines),
                ("worker", worker_cpu_down, worker_outage_lines),
            )
        ]
    return result
