"""Moving messages the workers will not store to the dead-letter topic, with the reason."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import faust

from .decode import DeadLetter
from .metrics import WorkerMetrics

log = logging.getLogger(__name__)


class DeadLetterPublisher:
    """Sends dead letters through the Faust app's producer and waits for Kafka's acks."""

    def __init__(self, topic: faust.TopicT, metrics: WorkerMetrics) -> None:
        self._topic = topic
        self._metrics = metrics

    async def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Send every letter and return once all are acknowledged (before offsets move on)."""
        if not letters:
            return
        pending = [
            await self._topic.send(
                key=letter.key,
                value=letter.raw,
                headers=[
                    ("reason", letter.reason.encode()),
                    ("detail", letter.detail.encode()[:1000]),
                ],
            )
            for letter in letters
        ]
        await asyncio.gather(*pending)
        for letter in letters:
            self._metrics.dead_lettered.labels(letter.reason).inc()
            log.warning("dead-lettered a message: %s (%s)", letter.reason, letter.detail)
