"""The persist step: a consumed batch becomes stored rows and dead letters, nothing lost."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from ops_common.backoff import retry_forever
from ops_common.event import partition_key

from .dead_letters import DeadLetterPublisher
from .decode import ConsumedEvent, ConsumedMessage, DeadLetter, decode_batch
from .event_store import EventStore
from .metrics import WorkerMetrics

log = logging.getLogger(__name__)

#: Called with the stored events of a batch before it is acked (the windows' update).
AfterStore = Callable[[list[ConsumedEvent]], None]


class BatchPersister:
    """Stores one consumed batch. Returns only once every message is stored or dead-lettered
    (and `after_store` has run), so the agent may then ack (commit) all of them."""

    def __init__(
        self,
        store: EventStore,
        dead_letters: DeadLetterPublisher,
        metrics: WorkerMetrics,
        *,
        after_store: AfterStore | None = None,
        retry_max_s: float = 10.0,
    ) -> None:
        self._store = store
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._after_store = after_store
        self._retry_max_s = retry_max_s

    async def handle(self, messages: Sequence[ConsumedMessage]) -> list[ConsumedEvent]:
        """Decode, insert and dead-letter `messages`; retries until all are placed.

        Any failure, expected or not, is retried with back-off rather than raised: an agent
        that raises is restarted by Faust past the messages it had taken, which would then
        never be stored (nor committed) until the next rebalance. Storing is idempotent on the
        event id and the windows skip events they already counted, so a retry is safe.

        Returns the events now in ops_metrics (new or already there), for the windows.
        """
        self._metrics.consumed.inc(len(messages))
        retrying = retry_forever(
            Exception,
            what="persisting a batch",
            log=log,
            max_delay_s=self._retry_max_s,
            on_retry=self._metrics.batch_retries.inc,
            traceback=True,
        )
        return await retrying(self._place, messages)

    async def _place(self, messages: Sequence[ConsumedMessage]) -> list[ConsumedEvent]:
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
        stored = [c for c in batch.events if c.event.id not in refused_ids]
        if self._after_store is not None:
            self._after_store(stored)
        return stored

    async def _publish_retrying(self, letters: list[DeadLetter]) -> None:
        # Any producer failure: keep the offsets where they are and try again.
        retrying = retry_forever(
            Exception, what="dead-letter publish", log=log, max_delay_s=self._retry_max_s
        )
        await retrying(self._dead_letters.publish, letters)
