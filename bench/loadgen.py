"""HTTP load generator, run in its own process so it is not the gateway's bottleneck.

    python -m bench.loadgen --url URL --body-file F --seconds 10 --concurrency 32 [--key K]

Prints one JSON object: requests, per-status counts, requests/s, p50/p99 latency (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

import aiohttp
import orjson
import uvloop


async def run(
    url: str, body: bytes, headers: dict[str, str], seconds: float, concurrency: int
) -> dict[str, object]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)

    async def client(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] += 1
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(latencies),
        "statuses": {str(k): v for k, v in statuses.items()},
        "requests_per_s": statuses[201] / elapsed,
        "p50_ms": 1000 * statistics.median(ordered) if ordered else None,
        "p99_ms": 1000 * ordered[int(0.99 * (len(ordered) - 1))] if ordered else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--body-file", required=True)
    parser.add_argument("--key", default="")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    body = Path(args.body_file).read_bytes()
    headers = {"Content-Type": "application/json", "X-API-Key": args.key}
    result = uvloop.run(run(args.url, body, headers, args.seconds, args.concurrency))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")


if __name__ == "__main__":
    main()
