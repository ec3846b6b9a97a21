"""Seeded telemetry for the window tests, and the rollup-versus-view comparison."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import orjson
from aiohttp.test_utils import TestClient

from stream_workers.windows.aggregate import WindowResult
from stream_workers.windows.buckets import BUCKET_SECONDS, bucket_start
from stream_workers.windows.closer import same_result
from support.helpers import KEY_ALL

POST_HEADERS = {"X-API-Key": KEY_ALL, "Content-Type": "application/json"}


@dataclass(frozen=True)
class GeneratedLoad:
    """Events to post (duplicates included, shuffled) and what they cover."""

    events: list[dict[str, object]]
    apps: list[str]
    distinct_ids: int
    buckets: int


def generate_load(
    seed: int,
    *,
    events: int = 3000,
    keys: int = 6,
    buckets: int = 7,
    newest_bucket_age: timedelta = timedelta(minutes=30),
) -> GeneratedLoad:
    """Events over `buckets` closed buckets and `keys` series, with NULL latencies, failures,
    ~5 % duplicate ids and a shuffled (out-of-order, late) arrival order."""
    rng = random.Random(seed)
    tag = uuid.UUID(int=rng.getrandbits(128)).hex[:8]
    series = [(f"w{tag}-{k % 3}", f"env{k % 2}", f"ev{k}") for k in range(keys)]
    newest = bucket_start(datetime.now(UTC) - newest_bucket_age)
    out: list[dict[str, object]] = []
    for _ in range(events):
        app, env, event = rng.choice(series)
        bucket = newest - BUCKET_SECONDS * rng.randrange(buckets)
        ts = datetime.fromtimestamp(bucket + rng.uniform(0, BUCKET_SECONDS - 0.001), UTC)
        item: dict[str, object] = {
            "id": str(uuid.UUID(int=rng.getrandbits(128))),
            "app": app,
            "env": env,
            "event": event,
            "ok": rng.random() > 0.1,
            "ts": ts.isoformat(),
        }
        if rng.random() > 0.2:
            item["latency_ms"] = int(rng.lognormvariate(4, 1)) % 10_000
        out.append(item)
    duplicates = [dict(rng.choice(out)) for _ in range(events // 20)]
    everything = out + duplicates
    rng.shuffle(everything)
    return GeneratedLoad(everything, sorted({s[0] for s in series}), len(out), buckets)


async def window_mismatches(conn: asyncpg.Connection, apps: list[str], grace_s: float) -> list[str]:
    """Differences between ops_metrics_5min and v_ops_5min over closed buckets of `apps`
    (a full outer join: missing rows, extra rows and differing numbers all count)."""
    closed = "bucket + make_interval(secs => 300 + $2) < now()"
    cols = "bucket, app, env, event, total, avg_latency_ms, p95_latency_ms, failure_rate"
    view = await conn.fetch(
        f"SELECT {cols} FROM v_ops_5min WHERE app = ANY($1) AND {closed}", apps, grace_s
    )
    rollup = await conn.fetch(
        f"SELECT {cols} FROM ops_metrics_5min WHERE app = ANY($1) AND {closed}", apps, grace_s
    )
    by_key = {k: _result(r) for r in view for k in [_key(r)]}
    rolled = {k: _result(r) for r in rollup for k in [_key(r)]}
    problems = [f"missing in rollup: {k}" for k in by_key.keys() - rolled.keys()]
    problems += [f"extra in rollup: {k}" for k in rolled.keys() - by_key.keys()]
    problems += [
        f"differs {k}: view {by_key[k]} rollup {rolled[k]}"
        for k in by_key.keys() & rolled.keys()
        if not same_result(by_key[k], rolled[k])
    ]
    return problems


def _key(row: asyncpg.Record) -> tuple[object, ...]:
    return (row["bucket"], row["app"], row["env"], row["event"])


def _result(row: asyncpg.Record) -> WindowResult:
    return WindowResult(
        row["total"], row["avg_latency_ms"], row["p95_latency_ms"], row["failure_rate"]
    )


async def post_all(client: TestClient, events: list[dict[str, object]], batch: int = 500) -> None:
    """POST `events` in batches, retrying a batch answered 503 (broker restarting)."""
    for start in range(0, len(events), batch):
        body = orjson.dumps(events[start : start + batch])
        for _ in range(120):
            response = await client.post("/telemetry", data=body, headers=POST_HEADERS)
            if response.status == 201:
                break
            assert response.status == 503, await response.text()
            await asyncio.sleep(0.5)
        else:
            raise AssertionError("a batch was refused with 503 for a minute")


async def wait_until_rollup_equals_view(
    conn: asyncpg.Connection, load: GeneratedLoad, grace_s: float, timeout: float = 60
) -> list[str]:
    """Wait for every row to be stored and every closed window to match; return what still
    differs at the deadline (empty on success)."""
    deadline = asyncio.get_running_loop().time() + timeout
    problems = ["not compared yet"]
    while asyncio.get_running_loop().time() < deadline:
        stored = await conn.fetchval(
            "SELECT count(*) FROM ops_metrics WHERE app = ANY($1)", load.apps
        )
        if stored == load.distinct_ids:
            problems = await window_mismatches(conn, load.apps, grace_s)
            if not problems:
                return []
        else:
            problems = [f"{stored} of {load.distinct_ids} rows stored"]
        await asyncio.sleep(0.5)
    return problems
