"""Reference HTTP servers the gateway is compared with, each run as its own process.

    python -m bench.reference_servers noop --port P
    python -m bench.reference_servers seed --port P --dsn DSN

noop: parses the same JSON and answers 201 (the HTTP ceiling for single events).
seed: INSERTs each event into ops_metrics directly, one statement per event — the seed's
Edge-function design.
"""

from __future__ import annotations

import argparse
import uuid
from datetime import UTC, datetime

import asyncpg
import orjson
import uvloop
from aiohttp import web

POOL = web.AppKey("pool", asyncpg.Pool)


async def noop(request: web.Request) -> web.Response:
    events = orjson.loads(await request.read())
    count = len(events) if isinstance(events, list) else 1
    return web.json_response({"accepted": count}, status=201)


async def seed_insert(request: web.Request) -> web.Response:
    value = orjson.loads(await request.read())
    events = value if isinstance(value, list) else [value]
    now = datetime.now(UTC)
    async with request.app[POOL].acquire() as conn:
        for e in events:
            await conn.execute(
                "INSERT INTO ops_metrics (id, ts, app, env, event, ok, latency_ms, err_code,"
                " extra, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                uuid.uuid4(),
                now,
                e["app"],
                e["env"],
                e["event"],
                e["ok"],
                e.get("latency_ms"),
                e.get("err_code"),
                None if e.get("extra") is None else orjson.dumps(e["extra"]).decode(),
                now,
            )
    return web.json_response({"accepted": len(events)}, status=201)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["noop", "seed"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dsn", default="")
    args = parser.parse_args()
    app = web.Application()
    if args.kind == "noop":
        app.router.add_post("/telemetry", noop)
    else:

        async def pool(app: web.Application):  # type: ignore[no-untyped-def]
            app[POOL] = await asyncpg.create_pool(args.dsn, min_size=4, max_size=16)
            yield
            await app[POOL].close()

        app.cleanup_ctx.append(pool)
        app.router.add_post("/telemetry", seed_insert)
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()
