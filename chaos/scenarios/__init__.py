"""The fault scenarios, one module each, and what they share (`common`). Each runs load through
a real gateway process while recording every id answered 201, injects its fault into a real
process, waits for the pipeline to drain and compares with PostgreSQL (`accounting.account`);
it returns a `ScenarioResult` holding the figures and each claim it checked with the evidence,
held or not.

Every scenario gets its own topics, consumer group and app name, and stops every process it
started (even on failure). The single broker and PostgreSQL of `Environment.services` are
shared by the scenarios that run on them one after the other; a scenario that stops one of
them starts it again before it returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from .broker_outage import broker_outage
from .common import (
    WORKER_COUNTERS,
    Check,
    Environment,
    ScenarioResult,
    ScenarioRun,
    Timeline,
    new_app,
    scenario_pipeline,
    scenario_run,
    settle,
    sleep_until,
    standard_checks,
    start_gateway_and_worker,
    worker_counters,
)
from .gateway_sigkill import gateway_sigkill
from .gateway_sigterm import gateway_sigterm, gateway_sigterm_kafka_down
from .leader_kill import leader_kill, leader_kill_changelog_rf1
from .postgres_outage import postgres_outage
from .scale_workers import scale_workers
from .slack_outage import slack_outage
from .worker_sigkill import worker_sigkill

#: Every scenario, in the order the long run performs them.
SCENARIOS: dict[str, Callable[..., Awaitable[ScenarioResult]]] = {
    "worker-sigkill": worker_sigkill,
    "broker-outage": broker_outage,
    "leader-kill": leader_kill,
    "leader-kill-changelog-rf1": leader_kill_changelog_rf1,
    "postgres-outage": postgres_outage,
    "gateway-sigkill": gateway_sigkill,
    "gateway-sigterm": gateway_sigterm,
    "gateway-sigterm-kafka-down": gateway_sigterm_kafka_down,
    "scale-workers": scale_workers,
    "slack-outage": slack_outage,
}

__all__ = [
    "SCENARIOS",
    "WORKER_COUNTERS",
    "Check",
    "Environment",
    "ScenarioResult",
    "ScenarioRun",
    "Timeline",
    "broker_outage",
    "gateway_sigkill",
    "gateway_sigterm",
    "gateway_sigterm_kafka_down",
    "leader_kill",
    "leader_kill_changelog_rf1",
    "new_app",
    "postgres_outage",
    "scale_workers",
    "scenario_pipeline",
    "scenario_run",
    "settle",
    "slack_outage",
    "sleep_until",
    "standard_checks",
    "start_gateway_and_worker",
    "worker_counters",
    "worker_sigkill",
]
