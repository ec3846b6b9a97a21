"""The outbox sender: pending notifications go to Slack oldest first, each until Slack takes it.

A Slack outage only delays messages: evaluation keeps writing the outbox, and this loop keeps
retrying the oldest message with growing pauses (capped by OPS_ALERT_RETRY_MAX_S). A message is
marked sent after Slack accepted it, so a restart resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .alert_store import AlertStore
from .metrics import AlertMetrics
from .slack import SlackNotifier, SlackSendFailed

log = logging.getLogger(__name__)


class OutboxSender:
    """Drains `ops_alert_notifications` rows in `pending` delivery."""

    def __init__(
        self,
        store: AlertStore,
        notifier: SlackNotifier,
        metrics: AlertMetrics,
        *,
        retry_max_s: float,
    ) -> None:
        self._store = store
        self._notifier = notifier
        self._metrics = metrics
        self._retry_max_s = retry_max_s
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """New notifications are waiting."""
        self._wake.set()

    async def run(self) -> None:
        """Send forever; cancel to stop."""
        delay = 1.0
        while True:
            self._wake.clear()
            try:
                sent_all = await self.drain()
            except Exception:  # PostgreSQL away: the outbox is still there when it is back
                log.exception("outbox not reachable; retrying")
                sent_all = False
            if sent_all:
                delay = 1.0
                await self._wait(None)
            else:
                await self._wait(delay)
                delay = min(delay * 2, self._retry_max_s)

    async def drain(self) -> bool:
        """Send what is pending, in order; False when a send failed (the rest waits)."""
        while batch := await self._store.pending():
            self._metrics.outbox.set(len(batch))
            for notification_id, message in batch:
                try:
                    await self._notifier.send(message)
                except SlackSendFailed as exc:
                    self._metrics.slack_sends.labels("failed").inc()
                    log.warning("[ops-alert] Slack send failed, will retry: %s", exc)
                    await self._store.mark_failed(notification_id, str(exc))
                    return False
                self._metrics.slack_sends.labels("sent").inc()
                await self._store.mark_sent(notification_id)
                log.info("[ops-alert] sent to Slack: %s", message)
        self._metrics.outbox.set(0)
        return True

    async def _wait(self, timeout: float | None) -> None:
        # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
        # that arrives with the wake-up, and shutdown would wait on a task that runs on.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._wake.wait()
