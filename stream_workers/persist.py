"""The persist step: a consumed batch becomes stored rows and dead letters, nothing lost."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from ops_common.event import partition_key

from .dead_letters import DeadLetterPublisher
from .decode import ConsumedEvent, ConsumedMessage, DeadLetter, decode_batch
from .event_store import EventStore
from .metrics import WorkerMetrics

log = logging.getLogger(__name__)


class BatchPersister:
    """Stores one consumed batch. Returns only once every message is stored or dead-lettered,
    so the agent may then ack (commit) all of them."""

    def __init__(
        self, store: EventStore, dead_letters: DeadLetterPublisher, metrics: WorkerMetrics
    ) -> None:
        self._store = store
        self._dead_letters = dead_letters
        self._metrics = metrics

    async def handle(self, messages: Sequence[ConsumedMessage]) -> list[ConsumedEvent]:
        """Decode, insert and dead-letter `messages`; retries until all are placed.

        Returns the events now in ops_metrics (new or already there), for the windows.
        """
        self._metrics.consumed.inc(len(messages))
        batch = decode_batch(messages)
        result = await self._store.write([c.event for c in batch.events])
        self._metrics.inserted.inc(result.inserted)
        self._metrics.duplicates.inc(result.duplicates + batch.repeated)
        refused = [
            DeadLetter(
                raw=event.model_dump_json().encode(),
                key=partition_key(event.app, event.env, event.event),
                reason="refused_by_db",
                detail=message,
            )
            for event, message in result.refused
        ]
        await self._publish_retrying([*batch.dead_letters, *refused])
        refused_ids = {event.id for event, _ in result.refused}
        return [c for c in batch.events if c.event.id not in refused_ids]

    async def _publish_retrying(self, letters: list[DeadLetter]) -> None:
        delay = 0.2
        while True:
            try:
                await self._dead_letters.publish(letters)
                return
            except Exception as exc:  # any producer failure: keep the offsets where they are
                log.warning("dead-letter publish failed (%r); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
