"""Judging closed windows against rules: the per-(rule, series) state machine, pure.

inactive → pending (condition holds, fewer than `for` windows so far) → firing (held `for`
consecutive windows: announce) → resolved (condition cleared: announce). While firing, the
alert is announced again only once `repeat_interval_s` has passed. A window with fewer than
`min_total` events, or without the metric (no latencies), is not judged: the state and streak
stay as they were. Each window is judged once per rule: `last_bucket` remembers the newest.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from .rules import Metric, Rule

State = Literal["inactive", "pending", "firing", "resolved"]
Kind = Literal["firing", "repeat", "resolved"]


@dataclass(frozen=True, slots=True)
class ClosedWindow:
    """One closed 5-minute window of one series, as `ops_metrics_5min` holds it."""

    bucket: datetime
    app: str
    env: str
    event: str
    total: int
    avg_latency_ms: float | None
    p95_latency_ms: float | None
    failure_rate: float

    def value(self, metric: Metric) -> float | None:
        """The window's value of `metric`."""
        return float(self.total) if metric == "total" else getattr(self, metric)


@dataclass(frozen=True, slots=True)
class AlertState:
    """Where one rule stands for one series."""

    rule: str
    app: str
    env: str
    event: str
    state: State
    streak: int  #: consecutive judged windows meeting the condition
    last_bucket: datetime  #: newest window judged
    last_value: float | None
    since: datetime  #: when `state` was entered
    last_notified_at: datetime | None


@dataclass(frozen=True, slots=True)
class Notification:
    """A message a transition calls for: sent to Slack when armed, logged in dry run."""

    kind: Kind
    rule: Rule
    window: ClosedWindow
    value: float | None
    message: str


@dataclass(frozen=True, slots=True)
class Judgement:
    """The state after judging one window, and the message it calls for, if any."""

    state: AlertState
    notification: Notification | None


def judge(
    rule: Rule,
    window: ClosedWindow,
    previous: AlertState | None,
    *,
    now: datetime,
    repeat_interval_s: float,
) -> Judgement | None:
    """Judge `window` for `rule`; None when this window was judged before."""
    if previous is not None and window.bucket <= previous.last_bucket:
        return None
    state = previous or AlertState(
        rule.name,
        window.app,
        window.env,
        window.event,
        "inactive",
        0,
        window.bucket,
        None,
        now,
        None,
    )
    value = window.value(rule.metric)
    if value is None or window.total < rule.min_total:
        return Judgement(replace(state, last_bucket=window.bucket), None)
    state = replace(state, last_bucket=window.bucket, last_value=value)
    if rule.breached(value):
        return _breached(
            rule, window, state, value, now, rule.repeat_interval_s or repeat_interval_s
        )
    return _cleared(rule, window, state, value, now)


def _breached(
    rule: Rule,
    window: ClosedWindow,
    state: AlertState,
    value: float,
    now: datetime,
    repeat_s: float,
) -> Judgement:
    streak = state.streak + 1
    if state.state == "firing":
        due = (
            state.last_notified_at is None
            or (now - state.last_notified_at).total_seconds() >= repeat_s
        )
        if not due:
            return Judgement(replace(state, streak=streak), None)
        note = _notification("repeat", rule, window, value, rule.message)
        return Judgement(replace(state, streak=streak, last_notified_at=now), note)
    if streak >= rule.for_windows:
        note = _notification("firing", rule, window, value, rule.message)
        fired = replace(state, state="firing", streak=streak, since=now, last_notified_at=now)
        return Judgement(fired, note)
    pending = state.state == "pending"
    return Judgement(
        replace(state, state="pending", streak=streak, since=state.since if pending else now), None
    )


def _cleared(
    rule: Rule, window: ClosedWindow, state: AlertState, value: float, now: datetime
) -> Judgement:
    if state.state == "firing":
        note = _notification("resolved", rule, window, value, rule.resolved_message)
        return Judgement(
            replace(state, state="resolved", streak=0, since=now, last_notified_at=now), note
        )
    if state.state == "pending":
        return Judgement(replace(state, state="inactive", streak=0, since=now), None)
    return Judgement(replace(state, streak=0), None)


def _notification(
    kind: Kind, rule: Rule, window: ClosedWindow, value: float, template: str
) -> Notification:
    fields = {
        "rule": rule.name,
        "severity": rule.severity,
        "app": window.app,
        "env": window.env,
        "event": window.event,
        "metric": rule.metric,
        "op": rule.op,
        "value": value,
        "threshold": rule.threshold,
        "for": rule.for_windows,
        "bucket": window.bucket.isoformat(),
        "total": window.total,
        "failure_rate": window.failure_rate,
        "p95_latency_ms": window.p95_latency_ms,
        "avg_latency_ms": window.avg_latency_ms,
    }
    return Notification(kind, rule, window, value, rule.render(template, fields))
