"""PostgreSQL side of the agent, as role ops_alerter: closed windows in, alert state and the
notification history/outbox (`ops_alerts`, `ops_alert_notifications`) kept."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ops_common.postgres_pool import PostgresPool

from .evaluation import AlertState, ClosedWindow, Notification

SeriesKey = tuple[str, str, str, str]  #: (rule, app, env, event)

# Windows written (or corrected) since the last pass; ordered so each series is judged oldest
# window first.
_CLOSED_WINDOWS = """
SELECT bucket, app, env, event, total, avg_latency_ms, p95_latency_ms, failure_rate
FROM ops_metrics_5min WHERE updated_at >= $1 ORDER BY bucket, app, env, event
"""

_STATES = """
SELECT rule, app, env, event, state, streak, last_bucket, last_value, since, last_notified_at
FROM ops_alerts
"""

_SAVE_STATES = """
INSERT INTO ops_alerts AS a (rule, app, env, event, state, streak, last_bucket, last_value,
                             since, last_notified_at, updated_at)
SELECT *, now() FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[],
                            $6::int[], $7::timestamptz[], $8::float8[], $9::timestamptz[],
                            $10::timestamptz[])
ON CONFLICT (rule, app, env, event) DO UPDATE SET
    state = EXCLUDED.state, streak = EXCLUDED.streak, last_bucket = EXCLUDED.last_bucket,
    last_value = EXCLUDED.last_value, since = EXCLUDED.since,
    last_notified_at = EXCLUDED.last_notified_at, updated_at = now()
"""

_ADD_NOTIFICATIONS = """
INSERT INTO ops_alert_notifications (rule, app, env, event, kind, severity, bucket, metric,
                                     value, threshold, message, delivery)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
                     $7::timestamptz[], $8::text[], $9::float8[], $10::float8[], $11::text[],
                     $12::text[])
"""

_RECENT = """
SELECT id, created_at, rule, app, env, event, kind, severity, bucket, metric, value, threshold,
       message, delivery, sent_at
FROM ops_alert_notifications ORDER BY created_at DESC, id DESC LIMIT $1
"""

# One agent evaluates at a time, even if two replicas run by mistake.
_EVALUATION_LOCK = 0x0A1E27


class AlertStore:
    """Reads windows and keeps alert state through one `PostgresPool`."""

    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool

    async def closed_windows(self, updated_since: datetime) -> list[ClosedWindow]:
        """Closed windows written or corrected at or after `updated_since`, oldest first."""
        rows = await (await self._pool.ready()).fetch(_CLOSED_WINDOWS, updated_since)
        return [ClosedWindow(**dict(row)) for row in rows]

    async def states(self) -> dict[SeriesKey, AlertState]:
        """Every (rule, series) the agent has judged, as last saved."""
        rows = await (await self._pool.ready()).fetch(_STATES)
        return {(r["rule"], r["app"], r["env"], r["event"]): AlertState(**dict(r)) for r in rows}

    async def save(
        self, states: Sequence[AlertState], notifications: Sequence[Notification], *, armed: bool
    ) -> None:
        """Store new states and their notifications in one transaction (pending delivery when
        armed), so a restart sees either both or neither."""
        if not states and not notifications:
            return
        pool = await self._pool.ready()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _EVALUATION_LOCK)
            if states:
                await conn.execute(_SAVE_STATES, *_state_columns(states))
            if notifications:
                await conn.execute(
                    _ADD_NOTIFICATIONS,
                    *_notification_columns(notifications, "pending" if armed else "dry_run"),
                )

    async def pending(self, limit: int = 50) -> list[tuple[int, str]]:
        """Notifications waiting for Slack, oldest first: (id, message)."""
        rows = await (await self._pool.ready()).fetch(
            "SELECT id, message FROM ops_alert_notifications WHERE delivery = 'pending'"
            " ORDER BY id LIMIT $1",
            limit,
        )
        return [(r["id"], r["message"]) for r in rows]

    async def mark_sent(self, notification_id: int) -> None:
        """Slack accepted the notification."""
        await (await self._pool.ready()).execute(
            "UPDATE ops_alert_notifications SET delivery = 'sent', sent_at = now(),"
            " attempts = attempts + 1, last_error = NULL WHERE id = $1",
            notification_id,
        )

    async def mark_failed(self, notification_id: int, error: str) -> None:
        """An attempt failed; the notification stays pending."""
        await (await self._pool.ready()).execute(
            "UPDATE ops_alert_notifications SET attempts = attempts + 1, last_error = $2"
            " WHERE id = $1",
            notification_id,
            error[:500],
        )

    async def recent(self, limit: int) -> list[dict[str, Any]]:
        """The newest firings, repeats and resolutions, newest first."""
        rows = await (await self._pool.ready()).fetch(_RECENT, limit)
        return [dict(row) for row in rows]


def _state_columns(states: Sequence[AlertState]) -> tuple[list[Any], ...]:
    return (
        [s.rule for s in states],
        [s.app for s in states],
        [s.env for s in states],
        [s.event for s in states],
        [s.state for s in states],
        [s.streak for s in states],
        [s.last_bucket for s in states],
        [s.last_value for s in states],
        [s.since for s in states],
        [s.last_notified_at for s in states],
    )


def _notification_columns(notes: Sequence[Notification], delivery: str) -> tuple[list[Any], ...]:
    return (
        [n.rule.name for n in notes],
        [n.window.app for n in notes],
        [n.window.env for n in notes],
        [n.window.event for n in notes],
        [n.kind for n in notes],
        [n.rule.severity for n in notes],
        [n.window.bucket for n in notes],
        [n.rule.metric for n in notes],
        [n.value for n in notes],
        [n.rule.threshold for n in notes],
        [n.message for n in notes],
        [delivery] * len(notes),
    )
