"""The alert agent on real PostgreSQL and Kafka, notifying a real HTTP stand-in for Slack through
the real slack-sdk client: fire once, no repeat, resolve once; dry run; 429; restart; outage."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from aiokafka import AIOKafkaProducer
from aiokafka.admin import NewTopic
from support.helpers import KEY_ALL
from support.pipeline import Pipeline
from support.slack_standin import BOT_TOKEN, SlackStandIn, slack_standin

from alert_agent.app import create_app
from ops_common.postgres_pool import PostgresPool
from ops_common.settings import Settings
from opsctl.topics import ensure_topics
from stream_workers.windows.aggregate import WindowResult
from stream_workers.windows.buckets import BUCKET_SECONDS
from stream_workers.windows.rollup_store import RollupStore, WindowKey

AUTH = {"X-API-Key": KEY_ALL}
BREACH, CLEAR = 0.5, 0.0


class Windows:
    """Writes closed windows of one series the way the workers do (RollupStore, ops_rollup)."""

    def __init__(self, store: RollupStore, app: str) -> None:
        self.store, self.app, self.written = store, app, 0
        self.first_bucket = (int(time.time()) // BUCKET_SECONDS - 30) * BUCKET_SECONDS

    async def close_next(self, failure_rate: float, total: int = 100) -> None:
        """Write the next consecutive window with `failure_rate`."""
        key = WindowKey(self.app, "prod", "pay", self.first_bucket + self.written * BUCKET_SECONDS)
        await self.store.upsert([(key, WindowResult(total, 50.0, 90.0, failure_rate))])
        self.written += 1


@pytest.fixture
async def windows(rollup_dsn: str, app_name: str) -> AsyncIterator[Windows]:
    pool = PostgresPool(rollup_dsn)
    try:
        yield Windows(RollupStore(pool), app_name)
    finally:
        await pool.stop()


@pytest.fixture
def rules_file(tmp_path: Path, app_name: str) -> Path:
    """One rule on this test's app: failure rate above 10 % for 2 windows of ≥ 10 events."""
    path = tmp_path / "rules.yaml"
    rule = {
        "name": "failing",
        "match": {"app": app_name, "env": "prod"},
        "metric": "failure_rate",
        "op": ">",
        "threshold": 0.1,
        "min_total": 10,
        "for": 2,
        "severity": "critical",
        "message": "{severity}: {app}/{env}/{event} failure rate {value:.0%} > {threshold:.0%}",
    }
    path.write_text(yaml.safe_dump({"rules": [rule]}))
    return path


@pytest.fixture(scope="module")
def windows_topic(pipeline: Pipeline) -> str:
    """A windows topic of this module's own: the session's workers emit to the pipeline's, and
    their closed windows would trigger passes that race the tests' own POSTs."""
    topic = f"ops.windows.5m.alerts-{uuid.uuid4().hex[:8]}"
    settings = pipeline.settings()
    asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, [NewTopic(topic, 1, 1)]))
    return topic


@pytest.fixture
def agent_settings(pipeline: Pipeline, alert_dsn: str, rules_file: Path, windows_topic: str) -> Any:
    """Settings for an agent on the session pipeline; call with overrides."""

    def make(slack: SlackStandIn | None = None, **overrides: object) -> Settings:
        if slack is not None:  # armed, sending to the stand-in's webhook
            overrides = {
                "OPS_ALERT_DRY_RUN": False,
                "OPS_SLACK_WEBHOOK_URL": slack.url,
                **overrides,
            }
        return pipeline.settings(
            OPS_WINDOWS_TOPIC=windows_topic,
            OPS_ALERT_DATABASE_URL=alert_dsn,
            OPS_ALERT_RULES_FILE=str(rules_file),
            OPS_ALERT_EVAL_INTERVAL_S=3600,
            OPS_ALERT_RETRY_MAX_S=0.5,
            OPS_ALERT_GROUP_ID=f"alerts-{uuid.uuid4().hex[:8]}",
            **overrides,
        )

    return make


@asynccontextmanager
async def serve_agent(settings: Settings) -> AsyncIterator[TestClient]:
    """The agent app served in-process on a real socket."""
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


@asynccontextmanager
async def armed_agent(agent_settings: Any) -> AsyncIterator[tuple[SlackStandIn, TestClient]]:
    """A Slack stand-in and an armed agent sending to it."""
    async with slack_standin() as slack, serve_agent(agent_settings(slack)) as agent:
        yield slack, agent


async def evaluate(agent: TestClient) -> dict[str, Any]:
    """POST /ops-alert and return its body."""
    response = await agent.post("/ops-alert", headers=AUTH)
    assert response.status == 200, await response.text()
    return await response.json()


async def breach_twice(windows: Windows) -> None:
    """Close the two breaching windows the rule needs to fire (`for: 2`)."""
    await windows.close_next(BREACH)
    await windows.close_next(BREACH)


def ours(alerts: list[dict[str, Any]], app: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["app"] == app]


async def test_armed_fires_once_does_not_repeat_and_resolves_once(
    agent_settings: Any, windows: Windows, app_name: str
) -> None:
    async with armed_agent(agent_settings) as (slack, agent):
        await windows.close_next(BREACH)
        body = await evaluate(agent)
        assert body["dryRun"] is False
        assert body["evaluated"] >= 1
        assert ours(body["firing"], app_name) == []  # pending: `for` is 2

        await windows.close_next(BREACH)
        body = await evaluate(agent)
        assert [a["rule"] for a in ours(body["firing"], app_name)] == ["failing"]
        assert await slack.wait_for(1) == [f"critical: {app_name}/prod/pay failure rate 50% > 10%"]

        for _ in range(2):  # still firing: no repeat before the interval
            await windows.close_next(BREACH)
            await evaluate(agent)

        await windows.close_next(CLEAR)
        body = await evaluate(agent)
        assert ours(body["firing"], app_name) == []
        assert [a["rule"] for a in ours(body["resolved"], app_name)] == ["failing"]
        messages = await slack.wait_for(2)
        assert messages[1].startswith(f"RESOLVED failing: {app_name}/prod/pay failure_rate is 0")
        await windows.close_next(CLEAR)
        await evaluate(agent)
        assert len(slack.received) == 2

        recent = await agent.get("/api/ops/alerts?limit=50", headers=AUTH)
        listed = ours((await recent.json())["alerts"], app_name)
        assert [(a["kind"], a["delivery"]) for a in listed] == [
            ("resolved", "sent"),
            ("firing", "sent"),
        ]
        metrics = await (await agent.get("/metrics")).text()
        assert 'alert_slack_sends_total{outcome="sent"} 2.0' in metrics


async def test_armed_with_a_bot_token_posts_to_the_channel(
    agent_settings: Any, windows: Windows, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with slack_standin() as slack:
        settings = agent_settings(
            OPS_ALERT_DRY_RUN=False,
            OPS_SLACK_BOT_TOKEN=BOT_TOKEN,
            OPS_SLACK_CHANNEL="#ops-alerts",
            OPS_SLACK_API_URL=slack.api_url,
        )
        async with serve_agent(settings) as agent:
            await breach_twice(windows)
            await evaluate(agent)
            assert await slack.wait_for(1) == [
                f"#ops-alerts critical: {app_name}/prod/pay failure rate 50% > 10%"
            ]
    assert BOT_TOKEN not in caplog.text  # not even at DEBUG


async def test_dry_run_sends_nothing_and_logs_the_messages(
    agent_settings: Any, windows: Windows, app_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="alert_agent")
    async with (
        slack_standin() as slack,
        serve_agent(agent_settings(OPS_SLACK_WEBHOOK_URL=slack.url)) as agent,
    ):
        for rate in (BREACH, BREACH, BREACH, CLEAR):
            await windows.close_next(rate)
            body = await evaluate(agent)
            assert body["dryRun"] is True
        assert slack.attempts == 0
    lines = caplog.messages
    assert any(line.startswith("[ops-alert] dryRun OK") for line in lines)
    assert (
        f"[ops-alert] dryRun would send (firing): critical: {app_name}/prod/pay failure rate"
        " 50% > 10%"
    ) in lines
    assert any(
        line.startswith(f"[ops-alert] dryRun would send (resolved): RESOLVED failing: {app_name}")
        for line in lines
    )
    assert sum(app_name in line for line in lines) == 2  # one firing, one resolved


async def test_rate_limited_message_arrives_once_after_retry_after(
    agent_settings: Any, windows: Windows, app_name: str
) -> None:
    async with armed_agent(agent_settings) as (slack, agent):
        slack.script = [(429, {"Retry-After": "1"})]
        started = time.monotonic()  # before the windows: the start-up pass may judge them first
        await breach_twice(windows)
        await evaluate(agent)
        assert len(await slack.wait_for(1)) == 1
        assert slack.received_at[0] - started >= 1.0
        assert slack.attempts == 2
        metrics = await (await agent.get("/metrics")).text()
        assert 'alert_slack_sends_total{outcome="sent"} 1.0' in metrics
        assert 'alert_slack_sends_total{outcome="failed"}' not in metrics


async def test_restart_between_firing_and_resolving_does_not_resend(
    agent_settings: Any, windows: Windows, app_name: str
) -> None:
    async with slack_standin() as slack:
        settings = agent_settings(slack)
        async with serve_agent(settings) as agent:
            await breach_twice(windows)
            await evaluate(agent)
            await slack.wait_for(1)
        async with serve_agent(settings) as agent:
            body = await evaluate(agent)  # the start-up pass re-reads the same windows
            assert [a["rule"] for a in ours(body["firing"], app_name)] == ["failing"]
            await windows.close_next(CLEAR)
            await evaluate(agent)
            messages = await slack.wait_for(2)
        assert messages[0].startswith("critical:")
        assert messages[1].startswith("RESOLVED failing:")
        assert len(slack.received) == 2


async def test_a_closed_window_on_the_topic_triggers_evaluation(
    agent_settings: Any, windows: Windows, app_name: str
) -> None:
    async with slack_standin() as slack:
        settings = agent_settings(slack)
        async with serve_agent(settings) as agent:
            await _ready(agent)
            await breach_twice(windows)
            producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
            await producer.start()
            try:
                await producer.send_and_wait(settings.windows_topic, b"{}", key=b"closed")
            finally:
                await producer.stop()
            assert len(await slack.wait_for(1)) == 1


async def test_slack_outage_delays_messages_without_stopping_evaluation(
    agent_settings: Any, windows: Windows, app_name: str
) -> None:
    async with armed_agent(agent_settings) as (slack, agent):
        slack.outage_status = 503
        await breach_twice(windows)
        await evaluate(agent)
        await windows.close_next(BREACH)
        await evaluate(agent)  # evaluation goes on while Slack is down
        deadline = time.monotonic() + 15
        while slack.attempts < 5 and time.monotonic() < deadline:
            await _sleep(0.1)
        assert slack.attempts >= 5, "the outbox should keep retrying"
        recent = await (await agent.get("/api/ops/alerts", headers=AUTH)).json()
        assert [a["delivery"] for a in ours(recent["alerts"], app_name)] == ["pending"]

        slack.outage_status = None
        assert len(await slack.wait_for(1)) == 1
        await _sleep(1.0)
        assert len(slack.received) == 1
        metrics = await (await agent.get("/metrics")).text()
        assert 'alert_slack_sends_total{outcome="sent"} 1.0' in metrics
        assert 'alert_slack_sends_total{outcome="failed"}' in metrics


@pytest.mark.parametrize(
    ("method", "path", "headers", "status", "code"),
    [
        ("POST", "/ops-alert", {}, 401, "unauthorized"),
        ("POST", "/ops-alert", {"X-API-Key": "wrong"}, 401, "unauthorized"),
        ("GET", "/api/ops/alerts", {}, 401, "unauthorized"),
        ("GET", "/api/ops/alerts?limit=0", AUTH, 400, "bad_parameter"),
        ("GET", "/api/ops/alerts?limit=501", AUTH, 400, "bad_parameter"),
        ("GET", "/api/ops/alerts?limit=ten", AUTH, 400, "bad_parameter"),
        ("GET", "/ops-alert", AUTH, 405, "method_not_allowed"),
        ("GET", "/nowhere", AUTH, 404, "not_found"),
    ],
)
async def test_refusals_are_specific_json_errors(
    agent_settings: Any, method: str, path: str, headers: dict, status: int, code: str
) -> None:
    async with serve_agent(agent_settings()) as agent:
        response = await agent.request(method, path, headers=headers)
        assert response.status == status
        assert (await response.json())["error"]["code"] == code


async def test_post_ops_alert_answers_the_seed_contract(agent_settings: Any) -> None:
    async with serve_agent(agent_settings()) as agent:
        body = await evaluate(agent)
        assert set(body) == {"dryRun", "evaluated", "firing", "resolved"}
        assert body["dryRun"] is True
        limited = await agent.get("/api/ops/alerts?limit=1", headers=AUTH)
        assert limited.status == 200
        assert len((await limited.json())["alerts"]) <= 1


async def _ready(agent: TestClient, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (await agent.get("/readyz")).status != 200:
        assert time.monotonic() < deadline, await (await agent.get("/readyz")).text()
        await _sleep(0.2)


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
