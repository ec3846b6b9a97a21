"""`python -m chaos` (make chaos): run every fault scenario on real processes and write
docs/reliability.md and docs/reliability.json.

    python -m chaos [--quick] [--only NAME ...] [--out DIR] [--port-base N] [--pg-port N]
    python -m chaos --render docs/reliability.json   # the Markdown again, from a run's JSON

Starts a PostgreSQL and a Kafka broker of its own (ports 25600 and 29400+ by default, away
from `make up`, the test services and tests/reliability), one scenario after the other; the
leader-kill scenario starts a three-node cluster of its own, the slack-outage scenario an alert
agent and a Slack stand-in (ports +60, +61). Exits 1 when a claim did not hold
or a scenario could not complete.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import orjson

from devstack.kafka import KAFKA_VERSION

from .report import markdown, to_data, write
from .scenarios import SCENARIOS, Environment, ScenarioResult
from .services import ROOT, ChaosPorts, Services, Tuning

#: The long run (make chaos): the sizes the issue asks for.
LONG: dict[str, dict[str, Any]] = {
    "worker-sigkill": {"events": 100_000, "rate": 2000.0, "kills": 3},
    "broker-outage": {
        "rate": 1000.0,
        "before_s": 10.0,
        "outage_s": 30.0,
        "after_s": 15.0,
        "max_cpu_cores": 0.5,
    },
    "leader-kill": {"events": 50_000, "rate": 1000.0, "kill_after_s": 10.0, "down_s": 30.0},
    "leader-kill-changelog-rf1": {
        "events": 50_000,
        "rate": 1000.0,
        "kill_after_s": 10.0,
        "down_s": 30.0,
    },
    "postgres-outage": {"rate": 1000.0, "before_s": 10.0, "outage_s": 60.0, "after_s": 10.0},
    "gateway-sigkill": {"events": 30_000, "rate": 1500.0, "kills": 2},
    "gateway-sigterm": {"events": 30_000, "rate": 3000.0, "batch": 500},
    "gateway-sigterm-kafka-down": {"events": 20_000, "rate": 2000.0, "batch": 200},
    "scale-workers": {"events": 60_000, "rate": 1500.0},
    "slack-outage": {
        "rate": 500.0,
        "load_s": 150.0,
        "incident_s": 20.0,
        "outage_s": 180.0,
        "retry_max_s": 60.0,
    },
}
#: --quick: the same faults at small sizes (what tests/reliability runs, plus the rest).
QUICK: dict[str, dict[str, Any]] = {
    "worker-sigkill": {"events": 6_000, "rate": 1000.0, "kills": 1},
    "broker-outage": {"rate": 500.0, "before_s": 3.0, "outage_s": 10.0, "after_s": 4.0},
    "leader-kill": {"events": 12_000, "rate": 500.0, "kill_after_s": 5.0, "down_s": 15.0},
    "leader-kill-changelog-rf1": {
        "events": 12_000,
        "rate": 500.0,
        "kill_after_s": 5.0,
        "down_s": 15.0,
    },
    "postgres-outage": {"rate": 500.0, "before_s": 3.0, "outage_s": 10.0, "after_s": 3.0},
    "gateway-sigkill": {"events": 6_000, "rate": 1000.0, "kills": 1},
    "gateway-sigterm": {"events": 8_000, "rate": 2000.0, "batch": 200},
    "gateway-sigterm-kafka-down": {"events": 8_000, "rate": 2000.0, "batch": 200},
    "scale-workers": {"events": 10_000, "rate": 1000.0, "together_s": 4.0},
    "slack-outage": {
        "rate": 500.0,
        "load_s": 12.0,
        "incident_s": 4.0,
        "outage_s": 20.0,
        "retry_max_s": 3.0,
        "eval_interval_s": 2.0,
        "quiet_s": 3.0,
    },
}


def tuning(quick: bool) -> Tuning:
    """The process settings of a run (defaults, but a short grace so windows close)."""
    if quick:
        return Tuning(worker_session_timeout_s=6.0, db_retry_max_s=2.0)
    return Tuning()


async def run_all(
    env: Environment, names: list[str], sizes: dict[str, dict[str, Any]]
) -> tuple[list[ScenarioResult], dict[str, str]]:
    """Run `names` one after the other; a scenario that raises is recorded, not fatal."""
    results: list[ScenarioResult] = []
    errors: dict[str, str] = {}
    for name in names:
        print(f"[chaos] {name} {sizes[name]}", flush=True)
        try:
            result = await SCENARIOS[name](env, **sizes[name])
        except Exception as exc:
            traceback.print_exc()
            errors[name] = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            continue
        results.append(result)
        verdict = (
            "ok"
            if result.passed
            else "CLAIMS FAILED: " + "; ".join(f"{c.claim} ({c.evidence})" for c in result.failed())
        )
        print(
            f"[chaos] {name}: {result.counts.acknowledged} acknowledged, "
            f"{result.counts.missing} missing, {result.counts.duplicated} duplicated, "
            f"{result.counts.bucket_mismatches} bucket mismatches, {result.seconds:.0f} s — "
            f"{verdict}",
            flush=True,
        )
    return results, errors


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write the report; the exit status says whether all held."""
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes")
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), help="repeatable")
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--root", type=Path, default=ROOT / ".stack" / "chaos")
    parser.add_argument("--port-base", type=int, default=29400)
    parser.add_argument("--pg-port", type=int, default=25600)
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only write reliability.md again from a run's reliability.json (no run)",
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        (args.out / "reliability.md").write_text(markdown(orjson.loads(args.render.read_bytes())))
        return 0
    # The admin clients here poll a cluster with a node down on purpose: keep stderr readable.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    names = args.only or list(SCENARIOS)
    sizes = QUICK if args.quick else LONG
    run_tuning = tuning(args.quick)
    services = Services(args.root, ChaosPorts(args.pg_port, args.port_base), run_tuning)
    started = time.monotonic()
    print(f"[chaos] starting PostgreSQL and Kafka under {args.root}", flush=True)
    services.start()
    try:
        env = Environment(services)
        results, errors = asyncio.run(run_all(env, names, sizes))
    finally:
        services.stop()
    data = to_data(
        results,
        errors,
        mode="quick" if args.quick else "long",
        settings=run_tuning.as_env(),
        kafka_version=KAFKA_VERSION,
        seconds=time.monotonic() - started,
    )
    data["sizes"] = {name: sizes[name] for name in names}
    write(data, args.out / "reliability.json", args.out / "reliability.md")
    print(f"[chaos] wrote {args.out / 'reliability.md'} and reliability.json", flush=True)
    return 0 if not errors and all(r.passed for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
