"""Sustained load: the highest rate at which the workers keep up (stored rows follow
accepted events with flat lag), then freshness and memory at half that rate."""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import asyncpg
import orjson

PER_REQUEST = 100


@dataclass
class Progress:
    """Events the gateway accepted so far, and answers that were not 201."""

    accepted: int = 0
    refused: dict[int, int] = field(default_factory=dict)


def _body(app: str) -> bytes:
    return orjson.dumps(
        [
            {
                "app": app,
                "env": "bench",
                "event": f"e{i % 10}",
                "ok": i % 13 != 0,
                "latency_ms": (i * 31) % 2000,
            }
            for i in range(PER_REQUEST)
        ]
    )


async def steady_load(
    url: str, key: str, app: str, rate: float, seconds: float, progress: Progress
) -> None:
    """POST 100-event requests at `rate` events/s (open loop) for `seconds`."""
    body, headers = _body(app), {"X-API-Key": key, "Content-Type": "application/json"}
    interval = PER_REQUEST / rate
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status == 201:
                    progress.accepted += PER_REQUEST
                else:
                    progress.refused[response.status] = progress.refused.get(response.status, 0) + 1

        tasks, started = [], time.perf_counter()
        for n in range(int(seconds / interval)):
            await asyncio.sleep(max(started + n * interval - time.perf_counter(), 0))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)


async def lag_is_flat(url: str, key: str, admin_dsn: str, rate: float, seconds: float) -> bool:
    """Run at `rate`; True when accepted-minus-stored does not grow over the run."""
    app, progress = f"sus-{uuid.uuid4().hex[:8]}", Progress()
    conn = await asyncpg.connect(admin_dsn)
    lags: list[int] = []
    load = asyncio.create_task(steady_load(url, key, app, rate, seconds, progress))
    try:
        while not load.done():
            stored = await conn.fetchval("SELECT count(*) FROM ops_metrics WHERE app = $1", app)
            lags.append(progress.accepted - stored)
            await asyncio.sleep(1)
        await load
        await _drained(conn, app, progress.accepted, timeout=max(seconds * 2, 10))
    finally:
        await conn.close()
    third = max(len(lags) // 3, 1)
    early, late = statistics.fmean(lags[:third]), statistics.fmean(lags[-third:])
    return not progress.refused and late <= early + rate  # grows by < 1 s of traffic


async def _drained(conn: asyncpg.Connection, app: str, accepted: int, timeout: float) -> None:
    # The next measurement starts without this one's backlog in front of it.
    deadline = time.perf_counter() + timeout
    query = "SELECT count(*) FROM ops_metrics WHERE app = $1"
    while await conn.fetchval(query, app) < accepted and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.5)


async def sustained_rate(url: str, key: str, admin_dsn: str, guess: float, seconds: float) -> float:
    """The highest of a few rates around `guess` with flat lag (0 when none is)."""
    for factor in (1.25, 1.0, 0.75, 0.5, 0.25):
        if await lag_is_flat(url, key, admin_dsn, guess * factor, seconds):
            return guess * factor
    return 0.0


def rss_mib(pid: int) -> float:
    """Resident memory of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def freshness_and_memory(
    url: str, key: str, admin_dsn: str, rate: float, seconds: float, pids: dict[str, int]
) -> dict[str, float]:
    """At `rate`: POST-to-row p50/p95 from probe events, and each process's RSS start/end."""
    figures = {f"{name} RSS start, MiB": rss_mib(pid) for name, pid in pids.items()}
    load = asyncio.create_task(
        steady_load(url, key, f"half-{uuid.uuid4().hex[:8]}", rate, seconds, Progress())
    )
    delays: list[float] = []
    conn = await asyncpg.connect(admin_dsn)
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    try:
        async with aiohttp.ClientSession() as session:
            while not load.done():
                event_id = uuid.uuid4()
                body = orjson.dumps(
                    {
                        "app": "probe",
                        "env": "bench",
                        "event": "fresh",
                        "ok": True,
                        "id": str(event_id),
                    }
                )
                sent = time.perf_counter()
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                query = "SELECT 1 FROM ops_metrics WHERE id = $1"
                # Polling the database is the measurement itself.
                while not await conn.fetchval(query, event_id):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
                delays.append(time.perf_counter() - sent)
                await asyncio.sleep(0.5)
        await load
    finally:
        await conn.close()
    ordered = sorted(delays)
    figures["freshness p50, ms"] = 1000 * statistics.median(ordered)
    figures["freshness p95, ms"] = 1000 * ordered[int(0.95 * (len(ordered) - 1))]
    figures |= {f"{name} RSS end, MiB": rss_mib(pid) for name, pid in pids.items()}
    return figures
