"""What every fault scenario shares: the environment it runs in, its timeline, its result and
the claims every scenario checks, its own pipeline (topics, gateway, worker), and waiting until
the pipeline drained before counting."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from devstack.processes import ManagedProcess

from ..accounting import Counts, account, wait_stored, wait_windows_equal
from ..load import EventFactory, LoadRecord, LoadSpec, run_load
from ..probes import metrics
from ..services import ChaosPorts, Pipeline, Services

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


async def start_load(
    pipeline: Pipeline, gateway_port: int, spec: LoadSpec, factory: EventFactory | None = None
) -> tuple[LoadRecord, asyncio.Task[LoadRecord]]:
    """Start `spec`'s load against the gateway on `gateway_port` as a task; the record fills
    while it runs (its `started` is set on return). `factory` makes the events when given."""
    record = LoadRecord(spec)
    url = f"{pipeline.gateway_url(gateway_port)}/telemetry"
    task = asyncio.create_task(
        run_load(url, pipeline.services.api_key, spec, record, factory=factory)
    )
    await asyncio.sleep(0)  # run_load sets record.started before its first await
    assert record.started > 0
    return record, task


def make_result(
    key: str,
    title: str,
    fault: str,
    record: LoadRecord,
    counts: Counts,
    timeline: Timeline,
    began: float,
) -> ScenarioResult:
    """A scenario's result with the load's figures and the standard checks; the scenario adds
    its own timings, facts and checks."""
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


@dataclass
class ScenarioRun:
    """One scenario while it runs: its pipeline with the gateway and the first worker started,
    their ports, its timeline, and when it began (the result's duration counts from there)."""

    env: Environment
    key: str
    pipeline: Pipeline
    gateway: ManagedProcess
    worker: ManagedProcess
    gateway_port: int
    worker_port: int
    began: float
    timeline: Timeline = field(default_factory=Timeline)

    async def start_load(
        self, spec: LoadSpec, factory: EventFactory | None = None
    ) -> tuple[LoadRecord, asyncio.Task[LoadRecord]]:
        """Start `spec`'s load against this scenario's gateway (see `start_load`)."""
        return await start_load(self.pipeline, self.gateway_port, spec, factory)

    def result(self, title: str, fault: str, record: LoadRecord, counts: Counts) -> ScenarioResult:
        """The result under this scenario's key, timeline and duration (see `make_result`)."""
        return make_result(self.key, title, fault, record, counts, self.timeline, self.began)


@asynccontextmanager
async def scenario_run(
    env: Environment,
    key: str,
    index: int,
    *,
    began: float | None = None,
    bootstrap: str | None = None,
    min_insync: int | None = None,
    replication_factor: int | None = None,
    extra_env: dict[str, str] | None = None,
) -> AsyncIterator[ScenarioRun]:
    """The setup every scenario starts with: its own pipeline (`scenario_pipeline`, named
    `key`) with gateway number `index` and worker number `index` started and ready. Every
    process is stopped at exit. `began` defaults to now (a scenario that prepares something
    first, such as a cluster, passes its own start)."""
    began = time.monotonic() if began is None else began
    gateway_port, worker_port = env.ports.gateway(index), env.ports.worker(index)
    async with scenario_pipeline(
        env.services,
        key,
        bootstrap=bootstrap,
        min_insync=min_insync,
        replication_factor=replication_factor,
        extra_env=extra_env,
    ) as pipeline:
        gateway, worker = await start_gateway_and_worker(pipeline, gateway_port, worker_port)
        yield ScenarioRun(env, key, pipeline, gateway, worker, gateway_port, worker_port, began)


async def sleep_until(moment: float) -> None:
    """Sleep until time.monotonic() reaches `moment`."""
    await asyncio.sleep(max(moment - time.monotonic(), 0))


async def cancel(*tasks: asyncio.Task[Any]) -> None:
    """Cancel `tasks` and wait until each has stopped."""
    for task in tasks:
        task.cancel()
    for task in tasks:
        with suppress(asyncio.CancelledError):
            await task


def wait_exit(process: ManagedProcess, timeout: float = 30) -> int | None:
    """Block until `process` exited; its exit code (None if it was never started)."""
    if process.process is None:
        return None
    return process.process.wait(timeout)


def log_lines(process: ManagedProcess) -> int:
    """Lines in a process's log so far."""
    try:
        with process.log_path.open("rb") as log:
            return sum(1 for _ in log)
    except OSError:
        return 0


async def stored_for_app(conn: asyncpg.Connection, app: str) -> int:
    """Rows of `app` in ops_metrics now."""
    return int(await conn.fetchval("SELECT count(*) FROM ops_metrics WHERE app = $1", app))


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
