"""Slack outage: Slack answers 503 for minutes while load runs and alerts fire and resolve.
Ingestion and the windows must not notice; the armed alert agent (`python -m alert_agent`)
must keep evaluating, keep its notifications pending while retrying with back-off, and deliver
each exactly once, oldest first, after Slack is back.

Slack is the stand-in of `chaos/slack_standin.py` (a real HTTP server in this process, which
the agent's real slack-sdk webhook client talks to). The load is one app's 8 series (2 envs x 4
events): during the incident every event fails, in closed buckets 20-30 minutes back, so each
series' windows breach the scenario's rule and it fires; then every event succeeds, in newer
buckets (10-20 minutes back), so each series resolves. The agent judges a window once, oldest
bucket first, and the newer buckets are only sent once every series fired, so there are
exactly two notifications per series: firing, then resolved.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from itertools import pairwise, product
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import yaml

from ops_common.settings import Settings

from ..load import ENVS, EVENTS, EventFactory, LoadRecord, LoadSpec, closed_buckets
from ..slack_standin import SlackStandIn, slack_standin
from .common import (
    Check,
    Environment,
    ScenarioResult,
    cancel,
    new_app,
    scenario_run,
    settle,
    sleep_until,
)

KEY = "slack-outage"
RULE = "chaos-failing"
#: HTTP requests one send makes while Slack answers 5xx: slack-sdk's first attempt and its 3
#: retries (alert_agent/slack.py, `_RETRIES`).
ATTEMPTS_PER_SEND = 4
#: The outbox sender's first pause after a failed send (alert_agent/delivery.py); it doubles
#: up to OPS_ALERT_RETRY_MAX_S.
FIRST_RETRY_S = 1.0
#: The agent's own OPS_ALERT_RETRY_MAX_S default, named in the report.
DEFAULT_RETRY_MAX_S = Settings.model_fields["alert_retry_max_s"].default
#: How long the incident's buckets lie back, and the recovery's (in 5-minute buckets): older
#: first, so the agent judges the incident's windows before the recovery's.
INCIDENT_BUCKETS_BACK, RECOVERY_BUCKETS_BACK = 4, 2

_STATES = "SELECT env, event, state FROM ops_alerts WHERE rule = $1 AND app = $2"
_OUTBOX = """
SELECT id, kind, env, event, message, delivery, attempts, sent_at
FROM ops_alert_notifications WHERE rule = $1 AND app = $2 ORDER BY id
"""
_SENDS = re.compile(r'^alert_slack_sends_total\{outcome="(\w+)"\} ([0-9.e+-]+)$', re.MULTILINE)
_EVALUATIONS = re.compile(r"^alert_evaluations_total ([0-9.e+-]+)$", re.MULTILINE)


async def slack_outage(
    env: Environment,
    *,
    rate: float = 500.0,
    load_s: float = 150.0,
    incident_s: float = 20.0,
    outage_s: float = 180.0,
    retry_max_s: float = DEFAULT_RETRY_MAX_S,
    eval_interval_s: float = 5.0,
    quiet_s: float = 10.0,
) -> ScenarioResult:
    """Slack answers 503 from before the load until `outage_s` after its start; the load
    (`load_s` at `rate`) fails completely for the first `incident_s` (and until every series
    fired), then succeeds. The agent runs with OPS_ALERT_RETRY_MAX_S=`retry_max_s` and
    evaluates every `eval_interval_s` besides on closed windows; after every notification
    reached Slack, `quiet_s` more show whether any is sent twice."""
    app = new_app("slack")
    series = set(product(ENVS, EVENTS))
    rules = _write_rules(env.services.root / "alert-rules" / f"{app}.yaml", app)
    async with (
        slack_standin(env.ports.slack) as slack,
        scenario_run(env, KEY, 10) as run,
    ):
        timeline = run.timeline
        slack.outage_status = 503
        down = timeline.mark("Slack stand-in answering 503")
        agent_url = f"http://127.0.0.1:{env.ports.alert_agent}"
        await asyncio.to_thread(
            run.pipeline.start_alert_agent,
            env.ports.alert_agent,
            {
                "OPS_ALERT_DRY_RUN": "false",
                "OPS_SLACK_WEBHOOK_URL": slack.url,
                "OPS_ALERT_RULES_FILE": str(rules),
                "OPS_ALERT_EVAL_INTERVAL_S": str(eval_interval_s),
                "OPS_ALERT_RETRY_MAX_S": str(retry_max_s),
                # Two windows of the incident breach per series: one announcement, no repeat.
                "OPS_ALERT_REPEAT_INTERVAL_S": "86400",
            },
        )
        timeline.mark("alert agent ready (armed)")
        spec = LoadSpec(
            app,
            int(rate * load_s),
            rate,
            buckets=2,
            seed=8,
            failure_rate=1.0,
            newest_bucket_back=INCIDENT_BUCKETS_BACK,
        )
        factory = EventFactory(spec)
        record, load = await run.start_load(spec, factory)
        conn = await asyncpg.connect(env.services.admin_dsn)
        api = aiohttp.ClientSession(
            headers={"X-API-Key": env.services.api_key},
            timeout=aiohttp.ClientTimeout(total=10),
        )
        firing_at = resolved_at = None
        listed_firing: list[dict[str, Any]] = []
        listed_resolved: list[dict[str, Any]] = []
        try:
            firing_at = await _wait_states(conn, app, series, "firing", incident_s + 90)
            if firing_at is not None:
                timeline.at(firing_at, "every series firing (ops_alerts)")
                listed_firing = await _listed(api, agent_url, app)
            await sleep_until(record.started + incident_s)
            # The incident ends: from now on every event succeeds, in newer buckets.
            factory.failure_rate = 0.0
            factory.bucket_starts = closed_buckets(2, RECOVERY_BUCKETS_BACK)
            timeline.mark("incident over: events succeed, in newer buckets")
            resolved_at = await _wait_states(conn, app, series, "resolved", 90)
            if resolved_at is not None:
                timeline.at(resolved_at, "every series resolved (ops_alerts)")
                listed_resolved = await _listed(api, agent_url, app)
            await sleep_until(record.started + outage_s)
            outbox_down = await conn.fetch(_OUTBOX, RULE, app)
            slack.outage_status = None
            back = timeline.mark("Slack stand-in answering 200 again")
            await load
            timeline.at(record.finished, "last answer of the load")
            expected = len(outbox_down)
            delivered_at = await _wait_delivered(slack, expected, retry_max_s + 60)
            if delivered_at is not None and expected:
                timeline.at(slack.received_at[0], "first notification accepted by Slack")
                timeline.at(delivered_at, "every notification accepted by Slack")
            await asyncio.sleep(quiet_s)  # a notification sent twice would arrive by now
            outbox = await conn.fetch(_OUTBOX, RULE, app)
            agent_metrics = await _agent_metrics(api, agent_url)
        finally:
            await cancel(load)
            await api.close()
            await conn.close()
        counts, timings = await settle(env, record)
    result = run.result(
        f"Slack answering 503 for {outage_s:.0f} s while alerts fire and resolve",
        f"the Slack stand-in answers every webhook request 503 from before the load until "
        f"{outage_s:.0f} s into it, then 200; meanwhile every event fails for the first "
        f"{incident_s:.0f} s (until every series fired), then succeeds, so each of the "
        f"{len(series)} series fires and resolves while Slack is down. The armed `python -m "
        f"alert_agent` runs with OPS_ALERT_RETRY_MAX_S={retry_max_s:g} "
        f"(default {DEFAULT_RETRY_MAX_S:g}) and OPS_ALERT_EVAL_INTERVAL_S={eval_interval_s:g}",
        record,
        counts,
    )
    _judge(
        result,
        record=record,
        slack=slack,
        series=series,
        down=down,
        back=back,
        firing_at=firing_at,
        resolved_at=resolved_at,
        listed=(listed_firing, listed_resolved),
        outbox_down=[dict(r) for r in outbox_down],
        outbox=[dict(r) for r in outbox],
        delivered_at=delivered_at,
        retry_max_s=retry_max_s,
        agent_metrics=agent_metrics,
    )
    result.timings = timings | result.timings
    return result


def _judge(
    result: ScenarioResult,
    *,
    record: LoadRecord,
    slack: SlackStandIn,
    series: set[tuple[str, str]],
    down: float,
    back: float,
    firing_at: float | None,
    resolved_at: float | None,
    listed: tuple[list[dict[str, Any]], list[dict[str, Any]]],
    outbox_down: list[dict[str, Any]],
    outbox: list[dict[str, Any]],
    delivered_at: float | None,
    retry_max_s: float,
    agent_metrics: dict[str, float],
) -> None:
    """Add the scenario's own claims, timings and facts to `result`."""
    answers_down = record.statuses(down, back)
    attempts_down = slack.attempts_between(down, back)
    accepted_down = [a for a in attempts_down if a.status == 200]
    refused_down = [a for a in attempts_down if a.status == 503]
    sent_before_back = [r for r in outbox_down if r["delivery"] != "pending"]
    kinds = Counter(r["kind"] for r in outbox)
    accepted = Counter(a.text for a in slack.attempts_between(back) if a.status == 200)
    expected = Counter(r["message"] for r in outbox)
    twice = {text: n for text, n in accepted.items() if n > 1}
    not_sent = [r["id"] for r in outbox if r["delivery"] != "sent"]
    in_order = [a.text for a in slack.attempts_between(back) if a.status == 200] == [
        r["message"] for r in outbox
    ]
    bound = _attempt_bound(back - down, retry_max_s, wakes=len(outbox_down))
    gaps = [b.at - a.at for a, b in pairwise(attempts_down)]
    first_delivery = slack.received_at[0] - back if slack.received_at else None
    listed_firing, listed_resolved = listed
    result.timings |= {
        "Slack answering 503, s": round(back - down, 1),
        "load start to every series firing, s": _after(firing_at, record.started),
        "load start to every series resolved, s": _after(resolved_at, record.started),
        "Slack back to the first notification accepted, s": (
            round(first_delivery, 1) if first_delivery is not None else None
        ),
        "Slack back to every notification accepted, s": (
            round(delivered_at - back, 1) if delivered_at is not None else None
        ),
    }
    result.facts = {
        "answers while Slack answered 503": dict(answers_down),
        "series of the load (env x event)": len(series),
        "notifications in the outbox (by kind)": dict(kinds),
        "GET /api/ops/alerts while Slack was down, once every series fired / resolved": [
            _deliveries(listed_firing),
            _deliveries(listed_resolved),
        ],
        "outbox when Slack came back (by delivery)": dict(
            Counter(r["delivery"] for r in outbox_down)
        ),
        "send attempts recorded on the oldest notification while Slack was down": (
            outbox_down[0]["attempts"] if outbox_down else 0
        ),
        "Slack requests while down, by answer": dict(Counter(a.status for a in attempts_down)),
        "Slack requests allowed while down (no hot loop)": bound,
        "Slack requests per 30 s of the outage": _per_window(attempts_down, down, back, 30.0),
        "longest pause between Slack requests while down, s": round(max(gaps, default=0.0), 1),
        "messages Slack accepted after it was back": sum(accepted.values()),
        "agent counters": agent_metrics,
    }
    quiet = f"within {retry_max_s:g} s (OPS_ALERT_RETRY_MAX_S) + 15 s of Slack's return"
    result.checks += [
        Check(
            "ingestion is unaffected: every request sent while Slack answered 503 was answered "
            "201 (no 5xx, no dropped connection)",
            bool(answers_down) and set(answers_down) == {"201"},
            f"answers to requests sent while Slack was down: {dict(answers_down)}",
        ),
        Check(
            f"the agent keeps evaluating while Slack is down: all {len(series)} series fire and "
            "then resolve before Slack is back",
            firing_at is not None
            and resolved_at is not None
            and resolved_at < back
            and kinds == Counter({"firing": len(series), "resolved": len(series)}),
            f"every series firing {_after(firing_at, record.started)} s and resolved "
            f"{_after(resolved_at, record.started)} s into the load, Slack back after "
            f"{back - down:.0f} s; notifications {dict(kinds)}",
        ),
        Check(
            "while Slack is down nothing is delivered and nothing is marked sent: every "
            "notification stays pending, and the agent keeps trying",
            not accepted_down
            and not sent_before_back
            and bool(outbox_down)
            and bool(refused_down)
            and all(a["delivery"] == "pending" for a in listed_firing + listed_resolved),
            f"{len(accepted_down)} messages accepted and {len(sent_before_back)} of "
            f"{len(outbox_down)} notifications marked sent before Slack was back; "
            f"{len(refused_down)} requests refused with 503; /api/ops/alerts listed "
            f"{_deliveries(listed_firing)} then {_deliveries(listed_resolved)}",
        ),
        Check(
            "after Slack is back each notification is delivered exactly once (messages "
            "accepted = the outbox, none twice, every row sent)",
            bool(expected) and accepted == expected and not twice and not not_sent,
            f"{sum(accepted.values())} messages accepted ({len(accepted)} distinct) for "
            f"{len(outbox)} notifications; sent twice: {twice or 'none'}; not sent: "
            f"{not_sent or 'none'}; {_quiet_note(delivered_at, back)}",
        ),
        Check(
            "the notifications arrive oldest first (the outbox's order)",
            in_order and bool(outbox),
            "same order as the outbox ids" if in_order else "order differs from the outbox ids",
        ),
        Check(
            "delivery retries back off (no hot loop): Slack requests while down within "
            f"{ATTEMPTS_PER_SEND} per send, pauses from {FIRST_RETRY_S:g} s doubling to "
            f"OPS_ALERT_RETRY_MAX_S ({retry_max_s:g} s), one extra send per evaluation that "
            "added notifications",
            0 < len(attempts_down) <= bound,
            f"{len(attempts_down)} requests in {back - down:.0f} s (at most {bound}); longest "
            f"pause {max(gaps, default=0.0):.1f} s; per 30 s: "
            f"{_per_window(attempts_down, down, back, 30.0)}",
        ),
        Check(
            f"Slack's return is noticed without a restart: the first notification arrives {quiet}",
            first_delivery is not None and first_delivery <= retry_max_s + 15,
            f"first accepted {first_delivery:.1f} s after Slack was back"
            if first_delivery is not None
            else "none accepted",
        ),
    ]


def _quiet_note(delivered_at: float | None, back: float) -> str:
    """When the last notification arrived, for the evidence column."""
    if delivered_at is None:
        return "not every notification arrived"
    return f"all accepted {delivered_at - back:.1f} s after Slack was back"


def _write_rules(path: Path, app: str) -> Path:
    """The scenario's rules file: the app's failure rate above 50 % in one window of at least
    one event fires; messages name the series and the bucket, so each notification's text is
    unique and duplicates are countable."""
    template = "{rule}: {app}/{env}/{event} failure rate {value:.0%} in the window of {bucket}"
    rule = {
        "name": RULE,
        "match": {"app": app},
        "metric": "failure_rate",
        "op": ">",
        "threshold": 0.5,
        "min_total": 1,
        "for": 1,
        "severity": "critical",
        "message": "FIRING " + template,
        "resolved_message": "RESOLVED " + template,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"rules": [rule]}, sort_keys=False))
    return path


async def _wait_states(
    conn: asyncpg.Connection,
    app: str,
    series: set[tuple[str, str]],
    state: str,
    timeout: float,
) -> float | None:
    """When every series of `app` reached `state` in ops_alerts (None: not within `timeout`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await conn.fetch(_STATES, RULE, app)
        if {(r["env"], r["event"]) for r in rows if r["state"] == state} >= series:
            return time.monotonic()
        await asyncio.sleep(0.25)
    return None


async def _wait_delivered(slack: SlackStandIn, count: int, timeout: float) -> float | None:
    """When Slack had accepted `count` messages (None: not within `timeout`)."""
    deadline = time.monotonic() + timeout
    while len(slack.received) < count or not count:
        if time.monotonic() > deadline:
            return None
        await asyncio.sleep(0.1)
    return slack.received_at[count - 1]


async def _listed(api: aiohttp.ClientSession, agent_url: str, app: str) -> list[dict[str, Any]]:
    """The app's notifications as GET /api/ops/alerts lists them ([] when it does not answer)."""
    try:
        async with api.get(f"{agent_url}/api/ops/alerts?limit=500") as response:
            body = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return []
    return [a for a in body.get("alerts", []) if a.get("app") == app]


async def _agent_metrics(api: aiohttp.ClientSession, agent_url: str) -> dict[str, float]:
    """The agent's evaluation passes and Slack sends by outcome ({} when it does not answer)."""
    try:
        async with api.get(f"{agent_url}/metrics") as response:
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return {}
    found = {f"alert_slack_sends_total{{{k}}}": float(v) for k, v in _SENDS.findall(text)}
    evaluations = _EVALUATIONS.search(text)
    if evaluations:
        found["alert_evaluations_total"] = float(evaluations.group(1))
    return found


def _deliveries(listed: list[dict[str, Any]]) -> dict[str, int]:
    """Listed notifications counted by kind and delivery, e.g. {"firing pending": 8}."""
    return dict(Counter(f"{a['kind']} {a['delivery']}" for a in listed))


def _attempt_bound(seconds: float, retry_max_s: float, *, wakes: int) -> int:
    """The most webhook requests the outbox sender may make in `seconds` of a Slack outage
    without a hot loop: one send at once, then one after each pause (from FIRST_RETRY_S,
    doubling, capped at `retry_max_s`; the sends' own time not even counted), plus one send
    per wake-up by new notifications; each send is ATTEMPTS_PER_SEND requests."""
    sends, elapsed, pause = 1, 0.0, FIRST_RETRY_S
    while elapsed + pause <= seconds:
        elapsed += pause
        sends += 1
        pause = min(pause * 2, retry_max_s)
    return ATTEMPTS_PER_SEND * (sends + wakes)


def _per_window(attempts: list[Any], since: float, until: float, width: float) -> list[int]:
    """How many of `attempts` fell in each `width`-second slice of [since, until] (the last
    slice takes the remainder, so a few tenths of a second do not make a slice of their own)."""
    slices = max(round((until - since) / width), 1)
    counts = [0] * slices
    for attempt in attempts:
        counts[min(int((attempt.at - since) // width), slices - 1)] += 1
    return counts


def _after(moment: float | None, origin: float) -> float | None:
    """Seconds from `origin` to `moment`, rounded (None when it never came)."""
    return round(moment - origin, 1) if moment is not None else None
