"""Post R requests of N events each to a running stack and report events/s.

    source .stack/env && .venv/bin/python bench/post_batches.py --requests 100 --events 500

Reports the accept rate (201s, i.e. Kafka acknowledged) and the store rate (until every
event of the run is a row in ops_metrics, read through DATABASE_URL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid

import aiohttp
import asyncpg
import orjson


def make_body(app: str, events: int) -> bytes:
    return orjson.dumps(
        [
            {
                "app": app,
                "env": "bench",
                "event": f"e{i % 10}",
                "ok": i % 17 != 0,
                "latency_ms": i % 900,
                "extra": {"i": i},
            }
            for i in range(events)
        ]
    )


async def run(requests: int, events: int, concurrency: int) -> None:
    url = os.environ["GATEWAY_URL"] + "/telemetry"
    headers = {"X-API-Key": os.environ["OPS_API_KEY"], "Content-Type": "application/json"}
    app = f"bench-{uuid.uuid4().hex[:8]}"
    bodies = [make_body(app, events) for _ in range(requests)]
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    statuses: list[int] = []

    async def client(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            body = queue.get_nowait()
            async with session.post(url, data=body, headers=headers) as response:
                statuses.append(response.status)
                await response.read()

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    accepted_s = time.perf_counter() - started
    total = requests * events
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        query = "SELECT count(*) FROM ops_metrics WHERE app = $1"
        # Polling is the measurement: the database is what we wait on, not an in-process event.
        while await conn.fetchval(query, app) < total:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    stored_s = time.perf_counter() - started
    ok = sum(1 for s in statuses if s == 201)
    print(
        f"{requests} requests x {events} events, concurrency {concurrency}: "
        f"{ok}/{requests} answered 201"
    )
    print(f"accepted: {total / accepted_s:,.0f} events/s ({accepted_s:.2f} s)")
    print(f"stored:   {total / stored_s:,.0f} events/s ({stored_s:.2f} s until all rows exist)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(run(args.requests, args.events, args.concurrency))


if __name__ == "__main__":
    main()
