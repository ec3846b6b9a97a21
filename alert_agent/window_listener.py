"""Evaluation on every closed window: the workers emit each closed window to `ops.windows.5m`
after writing it to the rollup, so a message there means "there is something new to judge"."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from ops_common.kafka_client import BackgroundKafkaClient

log = logging.getLogger(__name__)


class ClosedWindowListener:
    """Consumes the windows topic and runs `on_windows` once per batch of closed windows."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        group_id: str,
        on_windows: Callable[[], Awaitable[object]],
    ) -> None:
        self._on_windows = on_windows

        def consumer() -> AIOKafkaConsumer:
            return AIOKafkaConsumer(
                topic,
                bootstrap_servers=bootstrap_servers,
                group_id=group_id,
                # The rollup is what gets judged; the messages only wake the agent, so a new
                # group need not replay history (the start-up pass covers the lookback).
                auto_offset_reset="latest",
                enable_auto_commit=False,
            )

        self._kafka = BackgroundKafkaClient(consumer, "closed-window listener")

    @property
    def assigned(self) -> bool:
        """True once the consumer holds its partitions."""
        consumer = self._kafka.client
        return consumer is not None and bool(consumer.assignment())

    async def run(self) -> None:
        """Connect (retrying while Kafka is away), then evaluate per batch; cancel to stop."""
        self._kafka.start()
        try:
            consumer = await self._kafka.wait_connected()
            while consumer is not None:
                batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
                if batches:
                    await self._evaluate(consumer)
        finally:
            await self._kafka.stop()

    async def _evaluate(self, consumer: AIOKafkaConsumer) -> None:
        try:
            await self._on_windows()
        except Exception:
            # Offsets stay uncommitted; the timer's next pass judges these windows.
            log.exception("evaluation after closed windows failed")
            return
        try:
            await consumer.commit()
        except KafkaError as exc:  # a rebalance or broker restart; the next batch commits
            log.warning("windows topic offsets not committed: %r", exc)
