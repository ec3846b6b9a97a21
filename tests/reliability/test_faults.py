"""The short fault suite: the scenarios of `python -m chaos` at small sizes, on real processes
(gateway, worker, Kafka, PostgreSQL). Each asserts every claim its scenario checks: nothing
acknowledged lost, nothing stored twice, closed windows equal to v_ops_5min, plus the fault's
own claims. docs/reliability.md holds the long run's figures.

Slack outage adds a real `python -m alert_agent` (armed) and a real HTTP stand-in for Slack."""

from __future__ import annotations

import pytest

from chaos.scenarios import (
    Environment,
    ScenarioResult,
    broker_outage,
    gateway_sigkill,
    gateway_sigterm,
    postgres_outage,
    scale_workers,
    slack_outage,
    worker_sigkill,
)

pytestmark = pytest.mark.timeout(240)


def explain(result: ScenarioResult) -> str:
    """Why a scenario failed: its counts and the claims that did not hold."""
    failed = "; ".join(f"{c.claim}: {c.evidence}" for c in result.failed())
    return f"{result.title}: {result.counts.as_dict()} — {failed}; timeline {result.timeline}"


async def test_worker_sigkill_and_restart_loses_and_doubles_nothing(
    fault_env: Environment,
) -> None:
    result = await worker_sigkill(fault_env, events=6_000, rate=1000.0, kills=1)
    assert result.passed, explain(result)
    assert result.counts.acknowledged == 6_000


async def test_broker_stop_answers_only_503_and_ingestion_resumes(
    fault_env: Environment,
) -> None:
    result = await broker_outage(fault_env, rate=500.0, before_s=3.0, outage_s=10.0, after_s=4.0)
    assert result.passed, explain(result)
    assert result.facts["answers while the broker was down"].get("503", 0) > 0


async def test_postgres_stop_worker_backs_off_and_catches_up(fault_env: Environment) -> None:
    result = await postgres_outage(fault_env, rate=500.0, before_s=3.0, outage_s=10.0, after_s=3.0)
    assert result.passed, explain(result)
    assert result.facts["worker restarts"] == 0


async def test_gateway_sigkill_with_retrying_clients_stores_each_event_once(
    fault_env: Environment,
) -> None:
    result = await gateway_sigkill(fault_env, events=6_000, rate=1000.0, kills=1)
    assert result.passed, explain(result)


async def test_gateway_sigterm_drains_in_flight_and_refuses_new_connections(
    fault_env: Environment,
) -> None:
    result = await gateway_sigterm(fault_env, events=8_000, rate=2000.0, batch=200)
    assert result.passed, explain(result)


async def test_scaling_workers_one_two_one_under_load(fault_env: Environment) -> None:
    result = await scale_workers(fault_env, events=10_000, rate=1000.0, together_s=4.0)
    assert result.passed, explain(result)


async def test_slack_outage_leaves_ingestion_alone_and_delivers_each_alert_once_later(
    fault_env: Environment,
) -> None:
    result = await slack_outage(
        fault_env,
        rate=500.0,
        load_s=12.0,
        incident_s=4.0,
        outage_s=20.0,
        retry_max_s=3.0,
        eval_interval_s=2.0,
        quiet_s=3.0,
    )
    assert result.passed, explain(result)
    kinds = result.facts["notifications in the outbox (by kind)"]
    assert kinds == {"firing": 8, "resolved": 8}, explain(result)
