"""The fault scenarios. Each runs load through a real gateway process while recording every id
answered 201, injects its fault into a real process, waits for the pipeline to drain and
compares with PostgreSQL (`accounting.account`); it returns a `ScenarioResult` holding the
figures and each claim it checked with the evidence, held or not.

Every scenario gets its own topics, consumer group and app name, and stops every process it
started (even on failure). The single broker and PostgreSQL of `Environment.services` are
shared by the scenarios that run on them one after the other; a scenario that stops one of
them starts it again before it returns.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from devstack.processes import ManagedProcess
from devstack.stack import cache_dir

from .accounting import Counts, account, stored_of, wait_stored, wait_windows_equal
from .kafka_cluster import (
    MIN_INSYNC_REPLICAS,
    REPLICATION_FACTOR,
    KafkaCluster,
    describe_partitions,
)
from .load import LoadRecord, LoadSpec, run_load, wait_in_flight
from .probes import ConnectProbe, RssSampler, Supervisor, metrics, pid_of
from .services import ChaosPorts, Pipeline, Services

WORKER_COUNTERS = (
    "worker_events_consumed_total",
    "worker_events_inserted_total",
    "worker_events_duplicate_total",
    "worker_db_retries_total",
    "worker_window_corrections_total",
    "worker_window_events_replayed_total",
)


@dataclass
class Check:
    """One claim a scenario verified, whether it held, and the measurement behind it."""

    claim: str
    held: bool
    evidence: str


@dataclass
class ScenarioResult:
    """What one scenario measured."""

    key: str
    title: str
    fault: str
    load: dict[str, Any]
    counts: Counts
    statuses: dict[str, int]
    timings: dict[str, Any] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        """True when every claim held."""
        return all(c.held for c in self.checks)

    def failed(self) -> list[Check]:
        """The claims that did not hold."""
        return [c for c in self.checks if not c.held]


@dataclass
class Environment:
    """PostgreSQL and the single broker shared by the scenarios, plus how long to wait."""

    services: Services
    drain_timeout_s: float = 300.0
    window_timeout_s: float = 120.0

    @property
    def ports(self) -> ChaosPorts:
        """The environment's ports."""
        return self.services.ports

    @property
    def grace_s(self) -> float:
        """OPS_WINDOW_GRACE_S of the workers."""
        return self.services.tuning.window_grace_s


class Timeline:
    """Moments of a scenario (time.monotonic()), reported relative to the load's start."""

    def __init__(self) -> None:
        self.entries: list[tuple[float, str]] = []

    def mark(self, what: str) -> float:
        """Record `what` now; return the moment."""
        now = time.monotonic()
        self.entries.append((now, what))
        return now

    def at(self, moment: float, what: str) -> None:
        """Record `what` at an earlier `moment`."""
        self.entries.append((moment, what))

    def relative(self, origin: float) -> list[tuple[float, str]]:
        """The entries in time order as (seconds since `origin`, what)."""
        return [(round(t - origin, 2), what) for t, what in sorted(self.entries)]


def new_app(key: str) -> str:
    """A fresh app name, so a scenario counts only its own rows."""
    return f"chaos-{key}-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def scenario_pipeline(
    services: Services,
    name: str,
    *,
    bootstrap: str | None = None,
    min_insync: int | None = None,
    replication_factor: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[Pipeline]:
    """A pipeline of its own (topics created); every process it started is stopped at exit."""
    pipeline = Pipeline(
        services, name, bootstrap or services.kafka.bootstrap_servers, dict(extra_env or {})
    )
    try:
        await pipeline.create_topics(min_insync, replication_factor)
        yield pipeline
    finally:
        await asyncio.to_thread(pipeline.stop)


async def start_gateway_and_worker(
    pipeline: Pipeline, gateway_port: int, worker_port: int
) -> tuple[ManagedProcess, ManagedProcess]:
    """Start both processes at once and wait until both are ready."""
    gateway, worker = await asyncio.gather(
        asyncio.to_thread(pipeline.start_gateway, gateway_port),
        asyncio.to_thread(pipeline.start_worker, worker_port),
    )
    return gateway, worker


async def sleep_until(moment: float) -> None:
    """Sleep until time.monotonic() reaches `moment`."""
    await asyncio.sleep(max(moment - time.monotonic(), 0))


async def worker_counters(ports: list[int]) -> dict[str, float]:
    """The workers' counters summed over the running workers on `ports`."""
    total: dict[str, float] = {}
    for port in ports:
        for name, value in (
            await metrics(f"http://127.0.0.1:{port}/metrics", WORKER_COUNTERS)
        ).items():
            total[name] = total.get(name, 0.0) + value
    return total


async def settle(env: Environment, record: LoadRecord) -> tuple[Counts, dict[str, Any]]:
    """Wait until every acknowledged id is stored and every closed window equals the view
    (or the timeouts pass), then count."""
    conn = await asyncpg.connect(env.services.admin_dsn)
    try:
        _, drain_s = await wait_stored(conn, record.acked_ids, env.drain_timeout_s)
        _, _, windows_s = await wait_windows_equal(
            conn, record.spec.app, env.grace_s, env.window_timeout_s
        )
        counts = await account(conn, record.spec.app, record.acked_ids, env.grace_s)
    finally:
        await conn.close()
    return counts, {
        "drain after load end, s": round(drain_s, 1),
        "windows equal after drain, s": round(windows_s, 1),
    }


def standard_checks(counts: Counts, record: LoadRecord) -> list[Check]:
    """The claims every scenario checks."""
    return [
        Check(
            "nothing acknowledged is lost (missing = 0)",
            counts.missing == 0,
            f"{counts.stored} of {counts.acknowledged} acknowledged stored"
            + (f"; missing e.g. {counts.missing_sample[:3]}" if counts.missing else ""),
        ),
        Check(
            "each event stored once (duplicated = 0)",
            counts.duplicated == 0,
            f"{counts.duplicated} ids with more than one row",
        ),
        Check(
            "closed windows equal v_ops_5min (bucket mismatches = 0)",
            counts.bucket_mismatches == 0 and counts.buckets_compared > 0,
            f"{counts.bucket_mismatches} of {counts.buckets_compared} closed buckets differ"
            + (f"; e.g. {counts.mismatch_sample[:2]}" if counts.bucket_mismatches else ""),
        ),
        Check(
            "every batch was acknowledged in the end (clients retried with the same ids)",
            record.gave_up_events == 0
            and record.rejected_events == 0
            and counts.acknowledged == record.spec.events,
            f"{counts.acknowledged} of {record.spec.events} acknowledged, "
            f"{record.gave_up_events} abandoned, {record.rejected_events} rejected",
        ),
    ]


def _result(
    key: str,
    title: str,
    fault: str,
    record: LoadRecord,
    counts: Counts,
    timeline: Timeline,
    began: float,
) -> ScenarioResult:
    return ScenarioResult(
        key=key,
        title=title,
        fault=fault,
        load=record.summary(),
        counts=counts,
        statuses=dict(sorted(record.statuses().items())),
        checks=standard_checks(counts, record),
        timeline=timeline.relative(record.started),
        seconds=round(time.monotonic() - began, 1),
    )


async def _run_with_load(
    pipeline: Pipeline, gateway_port: int, spec: LoadSpec
) -> tuple[LoadRecord, asyncio.Task[LoadRecord]]:
    record = LoadRecord(spec)
    url = f"{pipeline.gateway_url(gateway_port)}/telemetry"
    task = asyncio.create_task(run_load(url, pipeline.services.api_key, spec, record))
    await asyncio.sleep(0)  # run_load sets record.started before its first await
    assert record.started > 0
    return record, task


async def _cancel(*tasks: asyncio.Task[Any]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with suppress(asyncio.CancelledError):
            await task


# --- 1. worker SIGKILL ------------------------------------------------------------------------


async def worker_sigkill(
    env: Environment, *, events: int = 100_000, rate: float = 2000.0, kills: int = 3
) -> ScenarioResult:
    """SIGKILL the only worker `kills` times during the load; restart it each time."""
    began = time.monotonic()
    timeline = Timeline()
    gw_port, w_port = env.ports.gateway(0), env.ports.worker(0)
    async with scenario_pipeline(env.services, "worker-sigkill") as pipeline:
        _, worker = await start_gateway_and_worker(pipeline, gw_port, w_port)
        spec = LoadSpec(new_app("wk"), events, rate, seed=1)
        record, load = await _run_with_load(pipeline, gw_port, spec)
        duration = events / rate
        restart_ready: list[float] = []
        try:
            for i in range(kills):
                await sleep_until(record.started + duration * (i + 1) / (kills + 1))
                killed = timeline.mark(f"worker SIGKILL #{i + 1}")
                worker.signal(signal.SIGKILL)
                await asyncio.to_thread(_wait_exit, worker)
                worker = await asyncio.to_thread(pipeline.start_worker, w_port)
                ready = timeline.mark(f"restarted worker ready #{i + 1}")
                restart_ready.append(round(ready - killed, 1))
            await load
            timeline.at(record.finished, "last answer of the load")
        finally:
            await _cancel(load)
        counts, timings = await settle(env, record)
        counters = await worker_counters([w_port])
    result = _result(
        "worker-sigkill",
        f"Worker SIGKILL x{kills}, restarted each time",
        f"SIGKILL of the only `python -m stream_workers` {kills} times during the load; a new "
        "worker started at once each time (it is ready once the dead member's session expired "
        "and the partitions were reassigned)",
        record,
        counts,
        timeline,
        began,
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


def _log_lines(process: ManagedProcess) -> int:
    """Lines in a process's log so far."""
    try:
        with process.log_path.open("rb") as log:
            return sum(1 for _ in log)
    except OSError:
        return 0


def _wait_exit(process: ManagedProcess, timeout: float = 30) -> int | None:
    if process.process is None:
        return None
    return process.process.wait(timeout)


# --- 2. broker stopped ------------------------------------------------------------------------


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

    `max_cpu_cores`, when given, adds the claim that the gateway stays (nearly) idle while the
    broker is down: the CPU it used per second stays under that many cores."""
    began = time.monotonic()
    timeline = Timeline()
    tuning = env.services.tuning
    gw_port, w_port = env.ports.gateway(1), env.ports.worker(1)
    kafka = env.services.kafka
    events = int(rate * (before_s + outage_s + after_s))
    async with scenario_pipeline(env.services, "broker-outage") as pipeline:
        gateway, _ = await start_gateway_and_worker(pipeline, gw_port, w_port)
        rss = RssSampler(lambda: pid_of(gateway))
        sampling = asyncio.create_task(rss.run())
        inflight: list[tuple[float, float]] = []
        gauging = asyncio.create_task(
            _gauge(f"{pipeline.gateway_url(gw_port)}/metrics", INFLIGHT_GAUGE, inflight)
        )
        spec = LoadSpec(new_app("broker"), events, rate, seed=2)
        record, load = await _run_with_load(pipeline, gw_port, spec)
        stopped = False
        try:
            await sleep_until(record.started + before_s)
            lines_before = _log_lines(gateway)
            stop_begin = timeline.mark("broker stop (SIGTERM) sent")
            stopped = True
            await asyncio.to_thread(kafka.stop)
            stop_done = timeline.mark("broker process exited")
            await sleep_until(stop_done + outage_s)
            start_begin = timeline.mark("broker starting")
            outage_lines = _log_lines(gateway) - lines_before
            await asyncio.to_thread(kafka.start)
            stopped = False
            start_done = timeline.mark("broker listening")
            await load
            timeline.at(record.finished, "last answer of the load")
        finally:
            await _cancel(load, sampling, gauging)
            if stopped:
                await asyncio.to_thread(kafka.start)
        counts, timings = await settle(env, record)
    result = _result(
        "broker-outage",
        f"Broker stopped for {outage_s:.0f} s",
        f"the only Kafka broker stopped (SIGTERM, controlled shutdown) {before_s:.0f} s into the "
        f"load, started again {outage_s:.0f} s after it exited; clients retry on 503 honouring "
        "Retry-After",
        record,
        counts,
        timeline,
        began,
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
        result.checks.append(
            Check(
                f"the gateway stays idle while the broker is down (CPU < {max_cpu_cores} core)",
                0 <= cpu_down < max_cpu_cores,
                f"{cpu_down} cores while down ({result.facts['gateway CPU before the stop, cores']}"
                f" before), {outage_lines:,} log lines written in the {outage_s:.0f} s",
            )
        )
    return result


# --- 3. partition leader killed in a 3-node cluster --------------------------------------------


async def leader_kill(
    env: Environment,
    *,
    events: int = 50_000,
    rate: float = 1000.0,
    kill_after_s: float = 10.0,
    down_s: float = 30.0,
    topic_replication_factor: int = REPLICATION_FACTOR,
) -> ScenarioResult:
    """SIGKILL the node leading most telemetry partitions of a 3-node cluster (brokers with
    min.insync.replicas 2) `kill_after_s` into the load; start it again `down_s` later.

    The pipeline's topics are created with 3 replicas and min.insync.replicas 2; the processes
    run with OPS_TOPIC_REPLICATION_FACTOR=`topic_replication_factor` (3 as in
    deploy/k8s/base), with which Faust creates the window table's changelog. With 1 (the
    setting's default, the dev overlay) the scenario is the control that shows why
    production needs 3."""
    began = time.monotonic()
    timeline = Timeline()
    control = topic_replication_factor < 2
    key = "leader-kill-changelog-rf1" if control else "leader-kill"
    index = 8 if control else 2
    gw_port, w_port = env.ports.gateway(index), env.ports.worker(index)
    cluster = KafkaCluster(
        env.services.root / "cluster", env.ports.cluster_base, cache_dir(), env.services.logs / key
    )
    await asyncio.to_thread(cluster.start)
    try:
        async with scenario_pipeline(
            env.services,
            key,
            bootstrap=cluster.bootstrap_servers,
            min_insync=MIN_INSYNC_REPLICAS,
            replication_factor=REPLICATION_FACTOR,
            extra_env={"OPS_TOPIC_REPLICATION_FACTOR": str(topic_replication_factor)},
        ) as pipeline:
            bootstrap = cluster.bootstrap_servers
            await start_gateway_and_worker(pipeline, gw_port, w_port)
            topic = pipeline.settings.telemetry_topic
            before = await describe_partitions(bootstrap, topic)
            changelog = await describe_partitions(bootstrap, pipeline.changelog_topic)
            offsets_topic = await describe_partitions(bootstrap, "__consumer_offsets")
            topic_isr = await _topic_config(bootstrap, topic, "min.insync.replicas")
            changelog_isr = await _topic_config(
                bootstrap, pipeline.changelog_topic, "min.insync.replicas"
            )
            spec = LoadSpec(new_app("leader"), events, rate, seed=3)
            record, load = await _run_with_load(pipeline, gw_port, spec)
            conn = await asyncpg.connect(env.services.admin_dsn)
            victim = 0
            try:
                await sleep_until(record.started + kill_after_s)
                leaders = Counter(p.leader for p in before)
                victim = leaders.most_common(1)[0][0]
                stored_at_kill = await _stored_for_app(conn, spec.app)
                killed = timeline.mark(f"SIGKILL node {victim} (leader of {leaders[victim]} of 6)")
                await asyncio.to_thread(cluster.kill_node, victim)
                failover = await _wait_leaders_moved(bootstrap, topic, victim)
                moved = timeline.mark("no telemetry partition led by the killed node")
                stored_at_failover = await _stored_for_app(conn, spec.app)
                after = await describe_partitions(bootstrap, topic)
                await sleep_until(killed + down_s)
                stored_before_restart = await _stored_for_app(conn, spec.app)
                restart = timeline.mark(f"node {victim} starting again")
                await asyncio.to_thread(cluster.start_node, victim)
                timeline.mark(f"node {victim} listening")
                await load
                timeline.at(record.finished, "last answer of the load")
            finally:
                await _cancel(load)
                await conn.close()
            counts, timings = await settle(env, record)
            counters = await worker_counters([w_port])
            changelog_after = await describe_partitions(bootstrap, pipeline.changelog_topic)
    finally:
        await asyncio.to_thread(cluster.stop)
    changelog_rf = sorted({len(p.replicas) for p in changelog}) or [0]
    result = _result(
        key,
        "Partition leader killed (3 nodes, min.insync.replicas 2, "
        f"OPS_TOPIC_REPLICATION_FACTOR={topic_replication_factor})"
        + (": control with a one-replica changelog" if control else ""),
        f"SIGKILL of the node leading the most telemetry partitions {kill_after_s:.0f} s into "
        f"the load, started again {down_s:.0f} s later; the pipeline's topics created with 3 "
        "replicas and min.insync.replicas 2, the workers run with "
        f"OPS_TOPIC_REPLICATION_FACTOR={topic_replication_factor}, which Faust creates the "
        "window changelog with",
        record,
        counts,
        timeline,
        began,
    )
    while_down = record.statuses(killed, restart, answered_in_span=True)
    first_201 = record.first_ack_after(killed)
    on_victim = [p.partition for p in changelog if victim in p.replicas]
    acked_down = record.acked_between(moved, restart)
    stored_down = stored_before_restart - stored_at_failover
    kept_storing = acked_down == 0 or stored_down >= 0.5 * acked_down
    before_rate = stored_at_kill / max(killed - record.started, 1e-9)
    result.timings |= timings | {
        "kill to new leaders elected, s": round(failover, 1) if failover >= 0 else -1.0,
        "kill to first 201 of a request sent after it, s": (
            round(first_201 - killed, 1) if first_201 is not None else -1.0
        ),
        "new leaders to node restart, s": round(restart - moved, 1),
    }
    result.facts = {
        "telemetry topic replication factor": sorted({len(p.replicas) for p in before}),
        "telemetry topic min.insync.replicas": topic_isr,
        "__consumer_offsets replication factor": sorted({len(p.replicas) for p in offsets_topic}),
        "Faust changelog topic replication factor": changelog_rf,
        "Faust changelog min.insync.replicas": changelog_isr,
        "changelog partitions with a replica on the killed node": on_victim,
        "leaders before (partition: node)": {p.partition: p.leader for p in before},
        "leaders after failover": {p.partition: p.leader for p in after},
        "ISR after failover": {p.partition: list(p.isr) for p in after},
        "changelog ISR after the run": {p.partition: list(p.isr) for p in changelog_after},
        "answers while the node was down": dict(while_down),
        "stored per s before the kill": round(before_rate, 1),
        "acknowledged / stored between failover and node restart": [acked_down, stored_down],
        "worker counters": counters,
    }
    storing = (
        f"{stored_down} rows stored while {acked_down} events were acknowledged in the "
        f"{restart - moved:.0f} s between failover and the node's restart; changelog "
        f"replication factor {changelog_rf}, partitions with a replica on the killed node "
        f"{on_victim}"
    )
    result.checks += [
        Check(
            "the cluster elects new leaders for every telemetry partition",
            failover >= 0,
            f"{failover:.1f} s after the kill" if failover >= 0 else "not within 60 s",
        ),
        Check(
            "ingestion continues with one node down (201s before the node is back)",
            while_down.get("201", 0) > 0,
            f"answers while the node was down: {dict(while_down)}",
        ),
    ]
    if control:
        result.checks.append(
            Check(
                "control: with a one-replica changelog whose broker died, storing stalls until "
                "it is back (why production sets OPS_TOPIC_REPLICATION_FACTOR=3)",
                bool(on_victim) and not kept_storing,
                storing,
            )
        )
    else:
        result.checks += [
            Check(
                f"the Faust changelog is created with {topic_replication_factor} replicas",
                changelog_rf == [topic_replication_factor],
                f"replication factor {changelog_rf}, min.insync.replicas {changelog_isr}",
            ),
            Check(
                "the worker keeps storing with one node down (after failover, before the restart)",
                kept_storing,
                storing,
            ),
        ]
    return result


async def leader_kill_changelog_rf1(env: Environment, **sizes: Any) -> ScenarioResult:
    """The control of `leader_kill`: OPS_TOPIC_REPLICATION_FACTOR=1, so the changelog has one
    replica and storing stalls while its broker is down."""
    return await leader_kill(env, topic_replication_factor=1, **sizes)


async def _stored_for_app(conn: asyncpg.Connection, app: str) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM ops_metrics WHERE app = $1", app))


async def _wait_leaders_moved(
    bootstrap: str, topic: str, victim: int, timeout: float = 60
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with suppress(Exception):  # metadata may be unavailable for a moment
            states = await describe_partitions(bootstrap, topic)
            if states and all(s.leader not in (victim, -1) for s in states):
                return time.monotonic() - started
        await asyncio.sleep(0.25)
    return -1.0


async def _topic_config(bootstrap: str, topic: str, name: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    for response in responses:
        for resource in response.to_object()["resources"]:
            for entry in resource["config_entries"]:
                if entry["config_names"] == name:
                    return str(entry["config_value"])
    return "?"


# --- 4. PostgreSQL stopped ---------------------------------------------------------------------


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
        record, load = await _run_with_load(pipeline, gw_port, spec)
        readiness: list[tuple[float, int]] = []
        probing = asyncio.create_task(_readiness(f"http://127.0.0.1:{w_port}/readyz", readiness))
        stopped = False
        try:
            await sleep_until(record.started + before_s)
            conn = await asyncpg.connect(env.services.admin_dsn)
            stored_at_stop = await _stored_for_app(conn, spec.app)
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
                stored_at_start = await _stored_for_app(conn, spec.app)
                deadline = start_done + env.drain_timeout_s
                while time.monotonic() < deadline:
                    if await _stored_for_app(conn, spec.app) >= acked_at_start:
                        break
                    await asyncio.sleep(0.25)
            finally:
                await conn.close()
            caught_up = timeline.mark("the backlog acknowledged before the restart is stored")
            await load
            timeline.at(record.finished, "last answer of the load")
        finally:
            await _cancel(load, watching, probing)
            if stopped:
                await asyncio.to_thread(postgres.start)
        counts, timings = await settle(env, record)
        counters = await worker_counters([w_port])
        last_pid = str(pid_of(supervisor.process))
    result = _result(
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


# --- 5. gateway SIGKILL ------------------------------------------------------------------------


async def gateway_sigkill(
    env: Environment, *, events: int = 30_000, rate: float = 1500.0, kills: int = 2
) -> ScenarioResult:
    """SIGKILL the gateway `kills` times mid-load and restart it; clients retry with the same
    ids, so every event is stored once."""
    began = time.monotonic()
    timeline = Timeline()
    gw_port, w_port = env.ports.gateway(4), env.ports.worker(4)
    async with scenario_pipeline(env.services, "gateway-sigkill") as pipeline:
        gateway, _ = await start_gateway_and_worker(pipeline, gw_port, w_port)
        spec = LoadSpec(new_app("gwkill"), events, rate, seed=5)
        record, load = await _run_with_load(pipeline, gw_port, spec)
        duration = events / rate
        downtime: list[float] = []
        spans: list[tuple[float, float]] = []
        try:
            for i in range(kills):
                await sleep_until(record.started + duration * (i + 1) / (kills + 1))
                await wait_in_flight(record, 1, timeout=5)
                killed = timeline.mark(f"gateway SIGKILL #{i + 1}")
                gateway.signal(signal.SIGKILL)
                await asyncio.to_thread(_wait_exit, gateway)
                gateway = await asyncio.to_thread(pipeline.start_gateway, gw_port)
                ready = timeline.mark(f"restarted gateway ready #{i + 1}")
                downtime.append(round(ready - killed, 1))
                spans.append((killed, ready))
            await load
            timeline.at(record.finished, "last answer of the load")
        finally:
            await _cancel(load)
        counts, timings = await settle(env, record)
    result = _result(
        "gateway-sigkill",
        f"Gateway SIGKILL x{kills}, clients retry with the same ids",
        f"SIGKILL of `python -m ingest_gateway` {kills} times mid-load (each while a request was "
        "in flight), restarted on the same port; requests in flight get no "
        "answer and are retried with the same event ids",
        record,
        counts,
        timeline,
        began,
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


# --- 6. gateway SIGTERM ------------------------------------------------------------------------


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
    began = time.monotonic()
    timeline = Timeline()
    tuning = env.services.tuning
    kafka = env.services.kafka
    drain_bound = tuning.produce_timeout_s + 5
    key = "gateway-sigterm-kafka-down" if broker_down else "gateway-sigterm"
    index = 9 if broker_down else 5
    gw_port, w_port = env.ports.gateway(index), env.ports.worker(index)
    async with scenario_pipeline(env.services, key) as pipeline:
        gateway, _ = await start_gateway_and_worker(pipeline, gw_port, w_port)
        spec = LoadSpec(
            new_app("gwterm"), events, rate, batch=batch, concurrency=concurrency, seed=6
        )
        record, load = await _run_with_load(pipeline, gw_port, spec)
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
            lines_at_term = _log_lines(gateway)
            usage.sample()
            term = timeline.mark("gateway SIGTERM")
            gateway.signal(signal.SIGTERM)
            exit_code = await asyncio.to_thread(_wait_exit, gateway, drain_bound + 60)
            exited = timeline.mark(f"gateway exited with {exit_code}")
            log_lines = _log_lines(gateway) - lines_at_term
            await asyncio.sleep(0.3)
            probing.cancel()
            if broker_down:
                await asyncio.to_thread(kafka.start)
                stopped = False
                timeline.mark("broker listening again")
            gateway = await asyncio.to_thread(pipeline.start_gateway, gw_port)
            restarted = timeline.mark("gateway restarted and ready")
            await load
            timeline.at(record.finished, "last answer of the load")
        finally:
            await _cancel(load, sampling, *([probing] if probing else []))
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
    result = _result(
        key,
        "Gateway SIGTERM under load" + (" while Kafka is down" if broker_down else ""),
        f"SIGTERM to `python -m ingest_gateway` mid-load ({concurrency} clients, {batch} events "
        "per request, sent while a request was in flight"
        + ("; the broker stopped 1 s before, so requests wait for acks" if broker_down else "")
        + "); started again once it exited",
        record,
        counts,
        timeline,
        began,
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
        "gateway log lines written between SIGTERM and exit": log_lines,
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


# --- 7. scale workers 1 -> 2 -> 1 --------------------------------------------------------------


async def scale_workers(
    env: Environment, *, events: int = 60_000, rate: float = 1500.0, together_s: float = 5.0
) -> ScenarioResult:
    """Start a second worker a quarter into the load, SIGTERM the first at two thirds (or
    `together_s` after the second is ready, if that is later)."""
    began = time.monotonic()
    timeline = Timeline()
    gw_port = env.ports.gateway(6)
    first_port, second_port = env.ports.worker(6), env.ports.worker(7)
    async with scenario_pipeline(env.services, "scale-workers") as pipeline:
        _, first = await start_gateway_and_worker(pipeline, gw_port, first_port)
        spec = LoadSpec(new_app("scale"), events, rate, seed=7)
        record, load = await _run_with_load(pipeline, gw_port, spec)
        duration = events / rate
        try:
            await sleep_until(record.started + duration * 0.25)
            joined = timeline.mark("second worker starting")
            await asyncio.to_thread(pipeline.start_worker, second_port)
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
            await _cancel(load)
        counts, timings = await settle(env, record)
        second_counters = await worker_counters([second_port])
    result = _result(
        "scale-workers",
        "Workers scaled 1 → 2 → 1 under load",
        "a second `python -m stream_workers` joins the group a quarter into the load; the "
        "first is stopped with SIGTERM at two thirds",
        record,
        counts,
        timeline,
        began,
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


#: Every scenario, in the order the long run performs them.
SCENARIOS: dict[str, Callable[..., Awaitable[ScenarioResult]]] = {
    "worker-sigkill": worker_sigkill,
    "broker-outage": broker_outage,
    "leader-kill": leader_kill,
    "leader-kill-changelog-rf1": leader_kill_changelog_rf1,
    "postgres-outage": postgres_outage,
    "gateway-sigkill": gateway_sigkill,
    "gateway-sigterm": gateway_sigterm,
    "gateway-sigterm-kafka-down": gateway_sigterm_kafka_down,
    "scale-workers": scale_workers,
}
