"""PostgreSQL outage: PostgreSQL is stopped for a while during the load and started again; the
gateway keeps accepting (Kafka is up), the worker must back off, stay up, commit no offset past
rows it did not store, and catch up."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient

from ..load import LoadSpec
from ..probes import Supervisor, pid_of
from ..services import Pipeline
from .common import (
    Check,
    Environment,
    ScenarioResult,
    Timeline,
    cancel,
    make_result,
    new_app,
    scenario_pipeline,
    settle,
    sleep_until,
    start_gateway_and_worker,
    start_load,
    stored_for_app,
    worker_counters,
)


async def postgres_outage(
    env: Environment,
    *,
    rate: float = 1000.0,
    before_s: float = 10.0,
    outage_s: float = 60.0,
    after_s: float = 10.0,
) -> ScenarioResult:
    """Stop PostgreSQL for `outage_s` during the load; the worker must back off, stay up,
    commit nothing it did not store, and catch up."""
    began = time.monotonic()
    timeline = Timeline()
    gw_port, w_port = env.ports.gateway(3), env.ports.worker(3)
    postgres = env.services.postgres
    events = int(rate * (before_s + outage_s + after_s))
    async with scenario_pipeline(env.services, "postgres-outage") as pipeline:
        _, worker = await start_gateway_and_worker(pipeline, gw_port, w_port)
        supervisor = Supervisor(worker, lambda: pipeline.start_worker(w_port, wait=False))
        watching = asyncio.create_task(supervisor.run())
        first_pid = str(pid_of(worker))
        spec = LoadSpec(new_app("pg"), events, rate, seed=4)
        record, load = await start_load(pipeline, gw_port, spec)
        readiness: list[tuple[float, int]] = []
        probing = asyncio.create_task(_readiness(f"http://127.0.0.1:{w_port}/readyz", readiness))
        stopped = False
        try:
            await sleep_until(record.started + before_s)
            conn = await asyncpg.connect(env.services.admin_dsn)
            stored_at_stop = await stored_for_app(conn, spec.app)
            await conn.close()
            stop_begin = timeline.mark("PostgreSQL stop (fast) begins")
            stopped = True
            await asyncio.to_thread(postgres.stop)
            stop_done = timeline.mark("PostgreSQL stopped")
            await asyncio.sleep(min(3.0, outage_s / 3))  # commits of batches stored before
            committed_early = await _committed(pipeline)
            await sleep_until(stop_done + outage_s - 1)
            committed_late = await _committed(pipeline)
            await sleep_until(stop_done + outage_s)
            start_begin = timeline.mark("PostgreSQL starting")
            await asyncio.to_thread(postgres.start)
            stopped = False
            start_done = timeline.mark("PostgreSQL accepting connections")
            acked_at_start = record.acknowledged
            conn = await asyncpg.connect(env.services.admin_dsn)
            try:
                stored_at_start = await stored_for_app(conn, spec.app)
                deadline = start_done + env.drain_timeout_s
                while time.monotonic() < deadline:
                    if await stored_for_app(conn, spec.app) >= acked_at_start:
                        break
                    await asyncio.sleep(0.25)
            finally:
                await conn.close()
            caught_up = timeline.mark("the backlog acknowledged before the restart is stored")
            await load
            timeline.at(record.finished, "last answer of the load")
        finally:
            await cancel(load, watching, probing)
            if stopped:
                await asyncio.to_thread(postgres.start)
        counts, timings = await settle(env, record)
        counters = await worker_counters([w_port])
        last_pid = str(pid_of(supervisor.process))
    result = make_result(
        "postgres-outage",
        f"PostgreSQL stopped for {outage_s:.0f} s",
        f"PostgreSQL stopped (pg_ctl stop -m fast) {before_s:.0f} s into the load and started "
        f"again {outage_s:.0f} s later; the gateway keeps accepting (Kafka is up), the worker "
        "must retry with back-off",
        record,
        counts,
        timeline,
        began,
    )
    advance = committed_late - committed_early
    ready_down = Counter(s for t, s in readiness if stop_done <= t <= start_begin)
    stored_while_down = stored_at_start - stored_at_stop
    catch_up = caught_up - start_done
    result.timings |= timings | {
        "PostgreSQL stop took, s": round(stop_done - stop_begin, 1),
        "PostgreSQL start took, s": round(start_done - start_begin, 1),
        "PostgreSQL start to the outage's backlog stored, s": round(catch_up, 1),
    }
    result.facts = {
        "worker restarts": supervisor.restarts,
        "worker exit codes": supervisor.exit_codes,
        "worker pid before / after": [first_pid, last_pid],
        "rows of the app stored while PostgreSQL was down": stored_while_down,
        "events acknowledged by the gateway before PostgreSQL was back": acked_at_start,
        "committed offsets (sum over partitions) 3 s into the outage / 1 s before its end": [
            committed_early,
            committed_late,
        ],
        "worker /readyz while down": {str(k): v for k, v in ready_down.items()},
        "worker counters": counters,
    }
    retries = counters.get("worker_db_retries_total", 0)
    result.checks += [
        Check(
            "the worker process stays alive (restarts = 0)",
            supervisor.restarts == 0 and first_pid == last_pid,
            f"{supervisor.restarts} restarts, pid {first_pid} -> {last_pid}",
        ),
        Check(
            "the worker backs off and retries (worker_db_retries_total > 0, not a hot loop)",
            0 < retries <= 10 * outage_s,
            f"{retries:.0f} retried inserts over a {outage_s:.0f} s outage",
        ),
        Check(
            "no offset committed past rows not stored (committed offsets flat while down, and "
            "no more messages committed than rows stored before the stop)",
            advance == 0 and 0 <= committed_late <= stored_at_start,
            f"committed offsets advanced by {advance} between 3 s into the outage and its end; "
            f"{committed_late} messages committed, {stored_at_start} rows stored before the stop "
            "(one message per event; the topic holds this scenario's events only)",
        ),
        Check(
            "the worker catches up after PostgreSQL is back",
            counts.missing == 0,
            f"the {acked_at_start - stored_at_stop} events acknowledged since the stop were "
            f"stored {catch_up:.1f} s after PostgreSQL accepted connections; missing at the end: "
            f"{counts.missing}",
        ),
    ]
    return result


async def _committed(pipeline: Pipeline) -> int:
    """Sum of the group's committed offsets on the telemetry topic (-1 when unreadable)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=pipeline.bootstrap)
    try:
        await admin.start()
        offsets = await admin.list_consumer_group_offsets(pipeline.group)
    except Exception:
        return -1
    finally:
        await admin.close()
    topic = pipeline.settings.telemetry_topic
    return sum(o.offset for tp, o in offsets.items() if tp.topic == topic and o.offset >= 0)


async def _readiness(url: str, into: list[tuple[float, int]]) -> None:
    import aiohttp

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        while True:
            try:
                async with session.get(url) as response:
                    into.append((time.monotonic(), response.status))
            except (aiohttp.ClientError, TimeoutError, OSError):
                into.append((time.monotonic(), 0))
            await asyncio.sleep(1)
