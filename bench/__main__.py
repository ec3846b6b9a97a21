"""`python -m bench` (make bench): start a local stack, measure, write docs/benchmarks.md.

Measured one after the other in one run, with ~200-byte events: the broker ceiling, the
Python client ceiling, the gateway batched (100 and 500 per request) and single (against a
no-op handler), the workers (persist-only, persist + windows, against a bare getmany + COPY
loop) and the seed's per-request INSERT design. `--quick` shrinks every size for the smoke
test in the suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import orjson

from devstack.kafka import KAFKA_VERSION, resolve_kafka_jars
from devstack.processes import ManagedProcess, wait_for_port
from devstack.stack import StackPorts, cache_dir, start_stack
from ops_common.settings import Settings

from . import endurance, kafka_ceilings, workers
from .report import Run, write

ROOT = Path(__file__).resolve().parent.parent


def event(i: int) -> dict[str, Any]:
    """One ~200-byte event."""
    return {
        "app": "bench",
        "env": "prod",
        "event": f"checkout-{i % 10}",
        "ok": i % 13 != 0,
        "latency_ms": (i * 31) % 2000,
        "err_code": None if i % 13 else "E_TIMEOUT",
        "extra": {"region": "ap-northeast-1", "build": "2026.12.04", "i": i},
    }


def load(url: str, body: bytes, key: str, seconds: float, concurrency: int) -> dict[str, Any]:
    """Run the load generator in its own process against `url`."""
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(body)
        f.flush()
        import subprocess

        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.loadgen",
                "--url",
                url,
                "--body-file",
                f.name,
                # One argument: a generated key may start with "-", which argparse would
                # take for an option.
                f"--key={key}",
                "--seconds",
                str(seconds),
                "--concurrency",
                str(concurrency),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return orjson.loads(out)


def reference_server(kind: str, port: int, dsn: str = "") -> ManagedProcess:
    """Start the no-op or seed-design server and wait for its port."""
    process = ManagedProcess(
        kind,
        [sys.executable, "-m", "bench.reference_servers", kind, "--port", str(port), "--dsn", dsn],
        log_path=ROOT / ".stack" / "logs" / f"bench-{kind}.log",
        cwd=ROOT,
    ).start()
    wait_for_port("127.0.0.1", port, 30, process=process.process, log_path=process.log_path)
    return process


def measure(run: Run, env: dict[str, str], sizes: dict[str, Any]) -> None:
    """Every measurement, one after the other."""
    f = run.figures
    settings = Settings()
    lib = resolve_kafka_jars(cache_dir())
    gateway = env["GATEWAY_URL"] + "/telemetry"
    key, seconds, conc = env["OPS_API_KEY"], sizes["seconds"], sizes["concurrency"]

    f["broker ceiling, records/s"] = kafka_ceilings.broker_ceiling(
        lib, settings.kafka_bootstrap_servers, "bench.broker", sizes["records"]
    )
    f["aiokafka loop, records/s"] = asyncio.run(
        kafka_ceilings.client_ceiling(settings, "bench.client", sizes["records"])
    )
    for per_request in (100, 500):
        body = orjson.dumps([event(i) for i in range(per_request)])
        result = load(gateway, body, key, seconds, conc)
        f[f"gateway {per_request}/request, events/s"] = result["requests_per_s"] * per_request
        f[f"gateway {per_request}/request, p50 ms"] = result["p50_ms"]
        f[f"gateway {per_request}/request, p99 ms"] = result["p99_ms"]
    single = orjson.dumps(event(1))
    result = load(gateway, single, key, seconds, conc)
    f["gateway single, requests/s"] = result["requests_per_s"]
    f["gateway single, p50 ms"], f["gateway single, p99 ms"] = result["p50_ms"], result["p99_ms"]
    noop = reference_server("noop", sizes["port"])
    try:
        result = load(f"http://127.0.0.1:{sizes['port']}/telemetry", single, key, seconds, conc)
    finally:
        noop.stop()
    f["no-op handler single, requests/s"] = result["requests_per_s"]
    f["no-op handler single, p50 ms"], f["no-op handler single, p99 ms"] = (
        result["p50_ms"],
        result["p99_ms"],
    )

    admin = env["DATABASE_URL"]
    n = sizes["worker_events"]
    f["worker persist-only, events/s"] = asyncio.run(workers.worker_rate(admin, False, n, 19191))
    f["worker persist + windows, events/s"] = asyncio.run(
        workers.worker_rate(admin, True, n, 19192)
    )
    f["getmany + COPY loop, events/s"] = asyncio.run(workers.copy_loop_rate(admin, n))
    if sizes["quix"]:
        f["Quix Streams 5-min windows, events/s"] = asyncio.run(workers.quix_rate(ROOT, n))

    seed = reference_server("seed", sizes["port"] + 1, admin)
    try:
        result = load(f"http://127.0.0.1:{sizes['port'] + 1}/telemetry", single, key, seconds, conc)
    finally:
        seed.stop()
    f["seed design (INSERT per request), events/s"] = result["requests_per_s"]

    rate = asyncio.run(
        endurance.sustained_rate(
            gateway, key, admin, f["worker persist + windows, events/s"], sizes["sustain_s"]
        )
    )
    f["end to end sustained, events/s"] = rate
    f |= asyncio.run(
        endurance.freshness_and_memory(
            gateway, key, admin, max(rate / 2, 50), sizes["half_load_s"], sizes["pids"]
        )
    )
    _ratios(run, list(sizes["pids"]), quix=sizes["quix"])


def _ratios(run: Run, processes: list[str], *, quix: bool) -> None:
    run.ratio(
        "gateway batched vs client ceiling",
        "gateway 500/request, events/s",
        "aiokafka loop, records/s",
        0.6,
    )
    run.ratio(
        "gateway single vs no-op handler",
        "gateway single, requests/s",
        "no-op handler single, requests/s",
        0.7,
    )
    run.ratio(
        "workers vs getmany + COPY",
        "worker persist + windows, events/s",
        "getmany + COPY loop, events/s",
        0.5,
    )
    if quix:
        run.ratio(
            "workers vs Quix Streams",
            "worker persist + windows, events/s",
            "Quix Streams 5-min windows, events/s",
            1.0,
        )
    run.ratio(
        "windows cost", "worker persist + windows, events/s", "worker persist-only, events/s", None
    )
    run.ratio(
        "end to end vs seed design",
        "end to end sustained, events/s",
        "seed design (INSERT per request), events/s",
        20,
    )
    for name in processes:
        # Target: at most 10 % growth, i.e. end/start <= 1.1 (shown, not judged by `met`).
        run.ratio(
            f"{name} RSS end / start at half load",
            f"{name} RSS end, MiB",
            f"{name} RSS start, MiB",
            None,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--port-offset", type=int, default=500)
    args = parser.parse_args()
    sizes: dict[str, Any] = (
        {
            "seconds": 1.0,
            "concurrency": 4,
            "records": 2000,
            "worker_events": 2000,
            "sustain_s": 3.0,
            "half_load_s": 3.0,
            "quix": False,  # installing quixstreams takes longer than the smoke run
        }
        if args.quick
        else {
            "seconds": 10.0,
            "concurrency": 32,
            "records": 300_000,
            "worker_events": 100_000,
            "sustain_s": 60.0,
            "half_load_s": 300.0,
            "quix": True,
        }
    )
    sizes["port"] = 18190 + args.port_offset
    # One API key carries the whole load here: its rate limit would measure itself.
    os.environ["OPS_RATE_LIMIT_EVENTS_PER_S"] = "0"
    stack = start_stack(ROOT / ".stack" / "bench", StackPorts(args.port_offset), fresh=True)
    try:
        os.environ.update(stack.env)
        sizes["pids"] = {p.name: p.process.pid for p in stack.processes if p.process}
        run = Run(settings=sizes)
        measure(run, stack.env, sizes)
        write(run, args.out / "benchmarks.json", args.out / "benchmarks.md", KAFKA_VERSION)
        print((args.out / "benchmarks.md").read_text())
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
