"""Unit tests for alert_agent.evaluation: thresholds, `for`, minimum traffic, repeats and
resolution, as tables of window sequences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support.tables import cases

from alert_agent.evaluation import AlertState, ClosedWindow, judge
from alert_agent.rules import Rule, parse_rules

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
HOUR = 3600.0


def rule(**fields: Any) -> Rule:
    """A failure-rate rule (> 0.1, for 1, min_total 10) with `fields` changed."""
    base = {
        "name": "r",
        "metric": "failure_rate",
        "op": ">",
        "threshold": 0.1,
        "min_total": 10,
        "message": "{rule} {app}/{env}/{event} {metric}={value:g}",
    }
    return parse_rules({"rules": [{**base, **fields}]})[0]


def window(
    i: int, value: float | None, total: int = 100, metric: str = "failure_rate"
) -> ClosedWindow:
    """The i-th consecutive window with `metric` = value."""
    values: dict[str, Any] = {"failure_rate": 0.0, "avg_latency_ms": 10.0, "p95_latency_ms": 20.0}
    if metric != "total":
        values[metric] = value
    return ClosedWindow(
        bucket=T0 + timedelta(minutes=5 * i),
        app="shop",
        env="prod",
        event="pay",
        total=int(value) if metric == "total" and value is not None else total,
        **values,
    )


def run(
    the_rule: Rule, windows: list[ClosedWindow], *, minutes_between: float = 5
) -> tuple[list[str], list[str]]:
    """Judge `windows` in order, `minutes_between` apart in wall-clock time; return the state
    after each window and the notification kinds in order."""
    state: AlertState | None = None
    states, kinds = [], []
    for i, w in enumerate(windows):
        now = T0 + timedelta(minutes=minutes_between * (i + 1))
        outcome = judge(the_rule, w, state, now=now, repeat_interval_s=HOUR)
        assert outcome is not None
        state = outcome.state
        states.append(state.state)
        if outcome.notification is not None:
            kinds.append(outcome.notification.kind)
    return states, kinds


def failure_rates(*rates: float | None, total: int = 100) -> list[ClosedWindow]:
    return [window(i, r, total=total) for i, r in enumerate(rates)]


@pytest.mark.parametrize(
    ("fields", "rates", "states", "kinds"),
    cases(
        [
            ("below threshold", {}, [0.05, 0.1], ["inactive", "inactive"], []),
            ("above fires at once with for 1", {}, [0.2], ["firing"], ["firing"]),
            ("equal is not greater", {}, [0.1], ["inactive"], []),
            (">= includes equal", {"op": ">="}, [0.1], ["firing"], ["firing"]),
            ("< fires below", {"op": "<", "threshold": 0.5}, [0.4], ["firing"], ["firing"]),
            (
                "for 3 holds",
                {"for": 3},
                [0.2, 0.3, 0.4],
                ["pending", "pending", "firing"],
                ["firing"],
            ),
            (
                "for 3 broken streak",
                {"for": 3},
                [0.2, 0.3, 0.0, 0.2],
                ["pending", "pending", "inactive", "pending"],
                [],
            ),
            ("stays firing silently", {}, [0.2, 0.3, 0.4], ["firing"] * 3, ["firing"]),
            (
                "resolves once",
                {},
                [0.2, 0.0, 0.0],
                ["firing", "resolved", "resolved"],
                ["firing", "resolved"],
            ),
            (
                "fires again after resolve",
                {},
                [0.2, 0.0, 0.3],
                ["firing", "resolved", "firing"],
                ["firing", "resolved", "firing"],
            ),
            (
                "for 2 after resolve needs 2 again",
                {"for": 2},
                [0.2, 0.2, 0.0, 0.2],
                ["pending", "firing", "resolved", "pending"],
                ["firing", "resolved"],
            ),
        ]
    ),
)
def test_failure_rate_sequences(fields: dict, rates: list, states: list, kinds: list) -> None:
    assert run(rule(**fields), failure_rates(*rates)) == (states, kinds)


@pytest.mark.parametrize(
    ("totals", "rates", "states", "kinds"),
    cases(
        [
            ("low traffic not judged", [5], [0.9], ["inactive"], []),
            ("exactly min_total judged", [10], [0.9], ["firing"], ["firing"]),
            ("low traffic keeps firing", [100, 3], [0.9, 0.0], ["firing", "firing"], ["firing"]),
        ]
    ),
)
def test_minimum_traffic(totals: list, rates: list, states: list, kinds: list) -> None:
    the_rule = rule()
    windows = [window(i, r, total=t) for i, (t, r) in enumerate(zip(totals, rates, strict=True))]
    assert run(the_rule, windows) == (states, kinds)


def test_low_traffic_window_between_breaches_does_not_reset_the_streak() -> None:
    windows = [window(0, 0.9), window(1, 0.0, total=3), window(2, 0.9)]
    assert run(rule(**{"for": 2}), windows) == (["pending", "pending", "firing"], ["firing"])


def test_a_window_without_the_metric_is_not_judged() -> None:
    p95 = rule(metric="p95_latency_ms", threshold=100)
    windows = [window(0, 500.0, metric="p95_latency_ms"), window(1, None, metric="p95_latency_ms")]
    assert run(p95, windows) == (["firing", "firing"], ["firing"])


def test_total_metric_compares_the_count() -> None:
    quiet = rule(metric="total", op="<", threshold=50, min_total=0)
    windows = [window(0, 80, metric="total"), window(1, 20, metric="total")]
    assert run(quiet, windows) == (["inactive", "firing"], ["firing"])


@pytest.mark.parametrize(
    ("minutes_between", "repeat", "kinds"),
    cases(
        [
            ("no repeat before the interval", 5, None, ["firing"]),
            ("repeat after the global interval", 60, None, ["firing", "repeat", "repeat"]),
            ("none while the interval runs", 40, None, ["firing", "repeat"]),
            ("rule override shortens it", 5, 600, ["firing", "repeat"]),
        ]
    ),
)
def test_repeat_interval(minutes_between: float, repeat: float | None, kinds: list) -> None:
    the_rule = rule(repeat_interval_s=repeat) if repeat else rule()
    windows = failure_rates(0.5, 0.5, 0.5)
    _, got = run(the_rule, windows, minutes_between=minutes_between)
    assert got == kinds


def test_each_window_is_judged_once() -> None:
    the_rule = rule()
    first = judge(the_rule, window(1, 0.5), None, now=T0, repeat_interval_s=HOUR)
    assert first is not None
    assert judge(the_rule, window(1, 0.5), first.state, now=T0, repeat_interval_s=HOUR) is None
    assert judge(the_rule, window(0, 0.5), first.state, now=T0, repeat_interval_s=HOUR) is None


def test_the_message_is_rendered_with_the_window_values() -> None:
    outcome = judge(rule(), window(0, 0.25), None, now=T0, repeat_interval_s=HOUR)
    assert outcome is not None
    assert outcome.notification is not None
    assert outcome.notification.message == "r shop/prod/pay failure_rate=0.25"
    resolved = judge(rule(), window(1, 0.0), outcome.state, now=T0, repeat_interval_s=HOUR)
    assert resolved is not None
    assert resolved.notification is not None
    assert resolved.notification.message.startswith("RESOLVED r: shop/prod/pay failure_rate is 0")


def test_absent_values_render_as_nan_not_an_error() -> None:
    the_rule = rule(message="{p95_latency_ms:.0f} ms")
    w = ClosedWindow(T0, "a", "prod", "e", 100, None, None, 0.5)
    outcome = judge(the_rule, w, None, now=T0, repeat_interval_s=HOUR)
    assert outcome is not None
    assert outcome.notification is not None
    assert outcome.notification.message == "nan ms"
