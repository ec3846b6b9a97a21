"""The alert agent application: rules, store, evaluation triggers and Slack delivery wired into
one aiohttp app whose background tasks start and stop with it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Coroutine, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from ops_common.http.middleware import error_middleware
from ops_common.postgres_pool import PostgresPool
from ops_common.settings import Settings

from .agent import AlertAgent
from .alert_store import AlertStore
from .delivery import OutboxSender
from .http_api import add_routes
from .metrics import AlertMetrics
from .rules import Rule, load_rules
from .slack import SlackNotifier, notifier_from_settings
from .window_listener import ClosedWindowListener

log = logging.getLogger(__name__)

AGENT = web.AppKey("agent", AlertAgent)


def create_app(
    settings: Settings,
    *,
    registry: CollectorRegistry | None = None,
    rules: Sequence[Rule] | None = None,
    notifier: SlackNotifier | None = None,
) -> web.Application:
    """Build the agent. Rules default to OPS_ALERT_RULES_FILE (or the packaged file), the
    notifier to what the Slack settings configure (none in dry run)."""
    settings.api_key_apps  # noqa: B018 -- a broken OPS_API_KEYS stops start-up, not a request
    if rules is None:
        rules = load_rules(Path(settings.alert_rules_file) if settings.alert_rules_file else None)
    if notifier is None:
        notifier = notifier_from_settings(settings)
    metrics = AlertMetrics(registry or CollectorRegistry())
    pool = PostgresPool(
        settings.alert_database_url.get_secret_value(), retry_max_s=settings.db_retry_max_s
    )
    store = AlertStore(pool)
    sender = (
        OutboxSender(store, notifier, metrics, retry_max_s=settings.alert_retry_max_s)
        if notifier is not None and not settings.alert_dry_run
        else None
    )
    agent = AlertAgent(
        rules,
        store,
        metrics,
        dry_run=settings.alert_dry_run,
        repeat_interval_s=settings.alert_repeat_interval_s,
        lookback_s=settings.alert_lookback_s,
        on_notifications=sender.wake if sender is not None else lambda: None,
    )
    listener = ClosedWindowListener(
        settings.kafka_bootstrap_servers,
        settings.windows_topic,
        settings.alert_group_id,
        agent.evaluate,
    )

    async def readiness() -> dict[str, bool]:
        return {"postgres": await pool.ping(), "kafka": listener.assigned}

    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await pool.start()
        tasks = [
            _task(listener.run(), "windows-listener"),
            _task(_every(settings.alert_eval_interval_s, agent), "evaluation-timer"),
        ]
        if sender is not None:
            tasks.append(_task(sender.run(), "slack-outbox"))
        yield
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await pool.stop()

    app = web.Application(middlewares=[error_middleware(metrics.http.observe)])
    app[AGENT] = agent
    add_routes(app, settings, agent, store, metrics, readiness)
    app.cleanup_ctx.append(lifecycle)
    return app


async def _every(interval_s: float, agent: AlertAgent) -> None:
    # The first pass runs at start-up: windows closed while the agent was down are judged now.
    while True:
        try:
            await agent.evaluate()
        except Exception:
            log.exception("[ops-alert] evaluation failed; next attempt in %.0fs", interval_s)
        await asyncio.sleep(interval_s)


def _task(coroutine: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
    task = asyncio.create_task(coroutine, name=name)
    task.add_done_callback(_log_crash)
    return task


def _log_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("background task %s stopped: %r", task.get_name(), task.exception())
