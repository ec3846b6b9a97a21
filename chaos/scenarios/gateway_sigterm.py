"""Gateway SIGTERM under load (and while Kafka is down, the drain's worst case): requests in
flight finish with an answer, new connections are refused, the process exits within its drain
time; it is started again so the load can finish."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from typing import Any

import asyncpg

from ..accounting import stored_of
from ..load import LoadSpec, wait_in_flight
from ..probes import ConnectProbe, RssSampler, pid_of
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
    wait_exit,
)


async def gateway_sigterm(
    env: Environment,
    *,
    events: int = 30_000,
    rate: float = 2000.0,
    concurrency: int = 32,
    batch: int = 100,
    broker_down: bool = False,
) -> ScenarioResult:
    """SIGTERM the gateway under load: in-flight requests should finish (their 201 events
    stored), new connections be refused, the process exit within its drain time; then it is
    started again so the load can finish.

    With `broker_down` the broker is stopped just before, so the requests in flight are
    waiting for Kafka acks when SIGTERM arrives (the drain time's worst case)."""
    tuning = env.services.tuning
    kafka = env.services.kafka
    drain_bound = tuning.produce_timeout_s + 5
    key = "gateway-sigterm-kafka-down" if broker_down else "gateway-sigterm"
    index = 9 if broker_down else 5
    async with scenario_run(env, key, index) as run:
        timeline, gateway, gw_port = run.timeline, run.gateway, run.gateway_port
        spec = LoadSpec(
            new_app("gwterm"), events, rate, batch=batch, concurrency=concurrency, seed=6
        )
        record, load = await run.start_load(spec)
        probe = ConnectProbe("127.0.0.1", gw_port)
        probing: asyncio.Task[None] | None = None
        exit_code: int | None = None
        stopped = False
        dying = gateway
        usage = RssSampler(lambda: pid_of(dying), interval=0.25)
        sampling = asyncio.create_task(usage.run())
        try:
            await sleep_until(record.started + events / rate / 2 - 0.5)
            probing = asyncio.create_task(probe.run())
            if broker_down:
                timeline.mark("broker stop (SIGTERM) sent")
                stopped = True
                await asyncio.to_thread(kafka.stop)
                timeline.mark("broker exited")
                await asyncio.sleep(1.0)  # requests now wait for acks that cannot come
            else:
                await asyncio.sleep(0.5)
            await wait_in_flight(record, 1, timeout=5)
            lines_at_term = log_lines(gateway)
            usage.sample()
            term = timeline.mark("gateway SIGTERM")
            gateway.signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(wait_exit, gateway, drain_bound + 60)
            exited = timeline.mark(f"gateway exited with {exit_code}")
            lines_draining = log_lines(gateway) - lines_at_term
            await asyncio.sleep(0.3)
            probing.cancel()
            if broker_down:
                await asyncio.to_thread(kafka.start)
                stopped = False
                timeline.mark("broker listening again")
            gateway = await asyncio.to_thread(run.pipeline.start_gateway, gw_port)
            restarted = timeline.mark("gateway restarted and ready")
            await load
            timeline.at(record.finished, "last answer of the load")
        finally:
            await cancel(load, sampling, *([probing] if probing else []))
            if stopped:
                await asyncio.to_thread(kafka.start)
        conn = await asyncpg.connect(env.services.admin_dsn)
        try:
            counts, timings = await settle(env, record)
            in_flight = [a for a in record.answers if a.sent < term < a.done]
            in_flight_201 = [a for a in in_flight if a.status == 201]
            ids = [i for a in in_flight_201 for i in record.acked_batches.get(a.batch, [])]
            stored_in_flight = await stored_of(conn, ids)
        finally:
            await conn.close()
    result = run.result(
        "Gateway SIGTERM under load" + (" while Kafka is down" if broker_down else ""),
        f"SIGTERM to `python -m ingest_gateway` mid-load ({concurrency} clients, {batch} events "
        "per request, sent while a request was in flight"
        + ("; the broker stopped 1 s before, so requests wait for acks" if broker_down else "")
        + "); started again once it exited",
        record,
        counts,
    )
    in_flight_statuses = Counter(
        str(a.status) if a.status else f"no answer: {a.error}" for a in in_flight
    )
    after_term = record.statuses(term, exited)
    probes_draining = probe.counts(term, exited)
    probes_before = probe.counts(term - 0.5, term)
    took = exited - term
    slowest = max((a.done - term for a in in_flight), default=0.0)
    result.timings |= timings | {
        "SIGTERM to exit, s": round(took, 2),
        "SIGTERM to the last in-flight answer, s": round(slowest, 2),
        "drain bound (shutdown_timeout = produce timeout + 5), s": drain_bound,
        "exit to restarted gateway ready, s": round(restarted - exited, 1),
    }
    result.facts = {
        "exit code": exit_code,
        "requests in flight at SIGTERM, by answer": dict(in_flight_statuses),
        "their 201 events stored": f"{stored_in_flight} of {len(ids)}",
        "requests sent between SIGTERM and exit, by answer": dict(after_term),
        "new connections (probe every 50 ms) in the 0.5 s before SIGTERM": dict(probes_before),
        "new connections between SIGTERM and exit": dict(probes_draining),
        "gateway CPU between SIGTERM and exit, cores": usage.cpu_share(term - 0.3, exited),
        "gateway log lines written between SIGTERM and exit": lines_draining,
    }
    after_term_probes = [(t - term, o) for t, o in probe.outcomes if term <= t <= exited]
    accepted_at = [t for t, o in after_term_probes if o.startswith("answered")]
    refused_at = [t for t, o in after_term_probes if o == "refused"]
    first_refused = min(refused_at, default=None)
    accepted_later = [t for t in accepted_at if first_refused is not None and t > first_refused]
    result.facts["new connection accepted last / refused first, ms after SIGTERM"] = [
        round(max(accepted_at) * 1000) if accepted_at else None,
        round(first_refused * 1000) if first_refused is not None else None,
    ]
    result.checks += [
        Check(
            "in-flight requests finish with an answer (none cut off)",
            bool(in_flight) and all(a.status != 0 for a in in_flight),
            f"{len(in_flight)} in flight: {dict(in_flight_statuses)}",
        ),
        Check(
            "events of in-flight requests answered 201 are stored",
            stored_in_flight == len(ids),
            f"{stored_in_flight} of {len(ids)}",
        ),
        Check(
            "new connections are refused from within 0.5 s of SIGTERM (the listener closes; "
            "none accepted after the first refusal)",
            (first_refused is not None and first_refused <= 0.5 and not accepted_later)
            or (not after_term_probes and took < 0.2),
            f"probes between SIGTERM and exit: {dict(probes_draining)}; first refused "
            + (f"{first_refused * 1000:.0f} ms" if first_refused is not None else "never")
            + (f", last accepted {max(accepted_at) * 1000:.0f} ms" if accepted_at else "")
            + " after SIGTERM",
        ),
        Check(
            f"the process exits within its drain time ({drain_bound:.0f} s), exit code 0",
            took <= drain_bound + 1 and exit_code == 0,
            f"exited after {took:.2f} s with code {exit_code}",
        ),
    ]
    return result


async def gateway_sigterm_kafka_down(env: Environment, **sizes: Any) -> ScenarioResult:
    """`gateway_sigterm` while the broker is stopped: the drain time's worst case."""
    return await gateway_sigterm(env, broker_down=True, **sizes)
