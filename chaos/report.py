"""Writing a fault run: docs/reliability.json with every figure, docs/reliability.md for people."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson

from .scenarios import ScenarioResult

#: Why a claim fails when it does, shown under it: (scenario key, start of the claim) -> text.
#: Each was traced in the processes' logs (`.stack/chaos/logs/`); the evidence column has the
#: figures of the run.
EXPLANATIONS: dict[tuple[str, str], str] = {
    ("broker-outage", "the gateway stays idle"): (
        "aiokafka's producer sender (`aiokafka/producer/sender.py`, `Sender._sender_routine`, "
        "aiokafka 0.14) waits only on `client.force_metadata_update()` while a partition's "
        "leader is unknown; with no broker reachable that update fails at once, so the loop "
        "turns without back-off, logging `Unable connect to node with id 1` and `Unable to "
        "update metadata from [1]` at ERROR each time. Leaders become unknown when produce "
        "requests were in flight as the broker shut down (the gateway log shows "
        "`NotLeaderForPartitionError` just before); when none was, the producer backs off and "
        "the gateway idles (the short outages of the test suite often see that). The answers "
        "are not affected: each is a 503 within the produce timeout."
    ),
    ("broker-outage", "gateway RSS bounded"): (
        "The events waiting for Kafka stay bounded (see the in-flight series: undelivered "
        "batches expire after the producer's request timeout), yet the RSS keeps rising slowly "
        "past that expiry, while aiokafka's sender loop turns without back-off (the CPU and "
        "log-line figures of the section; the claim on idling explains it); the growth is not "
        "in the events held."
    ),
    ("gateway-sigterm-kafka-down", "the process exits within its drain time"): (
        "aiohttp's `shutdown_timeout` bounds only the wait for request handlers (they answer "
        "503 within the produce timeout, see 'SIGTERM to the last in-flight answer'); the app's "
        "cleanup then stops the producer (`ingest_gateway/app.py` `_producer_lifecycle` -> "
        "`EventProducer.stop` -> `BackgroundKafkaClient.stop`), and `AIOKafkaProducer.stop()` "
        "waits for undeliverable batches until they expire unless that stop is bounded."
    ),
}

#: What a scenario's section explains whatever the outcome: scenario key -> text.
NOTES: dict[str, str] = {
    "leader-kill": (
        "The gateway answers 503 for requests touching the killed node's partitions until the "
        "controller fences it (`broker.session.timeout.ms`, 9 s by default) and elects new "
        "leaders from the in-sync replicas; with `acks=all` and `min.insync.replicas` 2 an "
        "acknowledged event is on at least two nodes, so the new leader has it."
    ),
    "slack-outage": (
        "A real `python -m alert_agent`, armed, notifies a Slack stand-in (a real HTTP server, "
        "`chaos/slack_standin.py`) through slack-sdk's webhook client, as in production. The "
        "load fails completely at first, in buckets 20-30 minutes back, so each series' "
        "windows breach the scenario's rule (failure rate > 50 %, one window) and it fires; "
        "once every series fired, every event succeeds, in buckets 10-20 minutes back, and "
        "each series resolves: two notifications per series, each with its own text. The "
        "outbox sender (`alert_agent/delivery.py`) keeps the oldest pending notification and "
        "retries it with pauses doubling from 1 s up to `OPS_ALERT_RETRY_MAX_S` (each send is "
        "up to 4 requests: slack-sdk retries a 5xx 3 times with back-off); a notification is "
        "marked sent only once Slack answered 200. The requests per 30 s show the back-off."
    ),
    "leader-kill-changelog-rf1": (
        "The same fault with the workers on `OPS_TOPIC_REPLICATION_FACTOR=1` (the setting's "
        "default, used by the dev overlay; the telemetry topic still has 3 replicas): Faust "
        "creates the window table's changelog with one replica, and "
        "the changelog partitions whose only replica was on the killed node have no leader. "
        "The persist agent's table writes then pile up in Faust's producer buffer (`producer "
        "buffer full` in the worker log) and block the agent, so no partition is stored until "
        "the node is back. Nothing acknowledged is lost; storing is delayed. With 3 replicas "
        "(previous section) the worker keeps storing."
    ),
}


def explanation(key: str, claim: str) -> str | None:
    """The known cause of a failing claim, if one was traced."""
    for (scenario, start), text in EXPLANATIONS.items():
        if scenario == key and claim.startswith(start):
            return text
    return None


def machine() -> dict[str, Any]:
    """Cores, memory, versions."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(pages / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {p: version(p) for p in ("aiohttp", "aiokafka", "faust-streaming", "asyncpg")},
    }


def to_data(
    results: list[ScenarioResult],
    errors: dict[str, str],
    *,
    mode: str,
    settings: dict[str, Any],
    kafka_version: str,
    seconds: float,
) -> dict[str, Any]:
    """The run as one JSON-ready object."""
    return {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": mode,
        "seconds": round(seconds, 1),
        "machine": machine(),
        "kafka": kafka_version,
        "settings": settings,
        "scenarios": [
            {
                **asdict(r),
                "counts": r.counts.as_dict(),
                "passed": r.passed,
            }
            for r in results
        ],
        "errors": errors,
    }


def write(data: dict[str, Any], json_path: Path, markdown_path: Path) -> None:
    """Write both files."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_bytes(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"
    )
    markdown_path.write_text(markdown(data))


def markdown(data: dict[str, Any]) -> str:
    """docs/reliability.md."""
    m = data["machine"]
    scenarios = data["scenarios"]
    lines = [
        "# Reliability under faults",
        "",
        f"Measured {data['when']} by `make chaos` (`python -m chaos"
        f"{' --quick' if data['mode'] == 'quick' else ''}`, {data['mode']} sizes, "
        f"{data['seconds']:.0f} s in all) on {m['cores']} cores / {m['memory_gib']} GiB, "
        f"Python {m['python']}, Kafka {data['kafka']}, aiohttp {m['packages']['aiohttp']}, "
        f"aiokafka {m['packages']['aiokafka']}, faust-streaming "
        f"{m['packages']['faust-streaming']}. Every figure is also in `docs/reliability.json`.",
        "",
        "Each scenario runs load through a real `python -m ingest_gateway` process while "
        "recording every event id answered 201, injects its fault into a real process "
        "(worker, broker, PostgreSQL, gateway) or, for the alert agent, into the Slack it "
        "notifies (a real HTTP stand-in), waits for the pipeline to drain and compares "
        "with PostgreSQL. Clients generate the event ids and retry a batch with the same ids on "
        "503/429/5xx (honouring `Retry-After`) and on connection errors, as `ops_client` does. "
        "Event times lie in closed 5-minute buckets 10 to 40 minutes back, and the workers run "
        f"with `OPS_WINDOW_GRACE_S={data['settings'].get('OPS_WINDOW_GRACE_S', '?')}`, so every "
        "window closes while the run lasts.",
        "",
        "- **acknowledged**: distinct event ids the gateway answered 201;",
        "- **stored**: of those, rows in `ops_metrics`;",
        "- **missing**: acknowledged and not stored (must be 0);",
        "- **duplicated**: ids with more than one row (must be 0);",
        "- **stored, unacknowledged**: rows of the run's app whose id was never answered 201 "
        "(allowed: a request can land in Kafka after its answer was lost or timed out);",
        "- **bucket mismatches**: closed buckets of the run's app where `ops_metrics_5min` "
        "differs from `v_ops_5min` (full outer join; `total` exactly, the rest to 1e-9 "
        "relative; must be 0).",
        "",
        "Answers without an HTTP status are counted by the client's exception: "
        "`ClientConnectorError` is a refused connection (no gateway listening), "
        "`ServerDisconnectedError` and `ClientOSError` a connection dropped mid-request.",
        "",
        "| fault | events | target → acknowledged rate, ev/s | acknowledged | stored | missing "
        "| duplicated | stored, unacknowledged | bucket mismatches (of) | claims held |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in scenarios:
        c, load = s["counts"], s["load"]
        held = sum(1 for k in s["checks"] if k["held"])
        verdict = f"{held}/{len(s['checks'])}" + ("" if s["passed"] else " **✗**")
        lines.append(
            f"| [{s['title']}](#{s['key']}) | {load['events']:,} "
            f"| {load['target rate, events/s']:,.0f} → {load['acknowledged rate, events/s']:,.0f} "
            f"| {c['acknowledged']:,} | {c['stored']:,} | {c['missing']:,} | {c['duplicated']:,} "
            f"| {c['stored_unacknowledged']:,} | {c['bucket_mismatches']} "
            f"({c['buckets_compared']}) | {verdict} |"
        )
    for key, error in data["errors"].items():
        lines.append(f"| {key} | — | — | — | — | — | — | — | — | **did not complete**: {error} |")
    failed = [(s, k) for s in scenarios for k in s["checks"] if not k["held"]]
    lines += ["", "## Claims that did not hold", ""]
    if failed or data["errors"]:
        for s, k in failed:
            lines.append(f"- **{s['title']}** — {k['claim']}: {k['evidence']}.")
            why = explanation(s["key"], k["claim"])
            if why:
                lines.append(f"  *Why:* {why}")
        lines += [f"- **{key}** did not complete: {err}" for key, err in data["errors"].items()]
    else:
        lines.append("None: every claim below held in this run.")
    for s in scenarios:
        lines += _section(s)
    lines += [
        "",
        "## Running it",
        "",
        "- `make chaos` (`python -m chaos`) — every scenario at the sizes above, about 14 "
        "minutes on 2 cores; `--quick` for small sizes, `--only NAME` (repeatable) for some; "
        "processes log to `.stack/chaos/logs/<scenario>/`. It exits 1 when a claim did not "
        "hold, after writing both files.",
        "- `pytest tests/reliability` — the short version in the test suite (about 2 "
        "minutes): worker SIGKILL, broker stop, PostgreSQL stop, gateway SIGKILL, gateway "
        "SIGTERM, workers 1 → 2 → 1 and a 20 s Slack outage at small sizes, on a PostgreSQL "
        "and broker of its own (ports 25500 and 29300-29399). The three-node leader kill and "
        "the SIGTERM while Kafka is down run only in the long run.",
        "",
        "Settings of this run: "
        + ", ".join(f"`{k}={v}`" for k, v in data["settings"].items())
        + " (everything else at its default).",
        "",
    ]
    return "\n".join(lines)


def _section(s: dict[str, Any]) -> list[str]:
    lines = ["", f'<a id="{s["key"]}"></a>', f"## {s['title']}", "", f"Fault: {s['fault']}.", ""]
    if s["key"] in NOTES:
        lines += [NOTES[s["key"]], ""]
    load = s["load"]
    lines.append(
        "Load: " + "; ".join(f"{k}: {_fmt(v)}" for k, v in load.items()) + f". The scenario "
        f"took {s['seconds']:.0f} s in all."
    )
    lines += ["", "Answers by status: " + _inline(s["statuses"]) + ".", ""]
    lines += ["| claim | held | evidence |", "|---|---|---|"]
    lines += [
        f"| {k['claim']} | {'yes' if k['held'] else '**no**'} | {_cell(k['evidence'])} |"
        for k in s["checks"]
    ]
    lines += ["", "| measurement | value |", "|---|---|"]
    lines += [f"| {k} | {_cell(_fmt(v))} |" for k, v in s["timings"].items()]
    lines += [f"| {k} | {_cell(_fmt(v))} |" for k, v in s["facts"].items()]
    lines += ["", "Timeline (seconds from the start of the load): "]
    lines.append("; ".join(f"{t:+.1f} {what}" for t, what in s["timeline"]) + ".")
    return lines


def _inline(counts: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}: {v:,}" if isinstance(v, int) else f"{k}: {v}" for k, v in counts.items()
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}".rstrip("0").rstrip(".")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
