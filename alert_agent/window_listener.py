"""Evaluation on every closed window: the workers emit each closed window to `ops.windows.5m`
after writing it to the rollup, so a message there means "there is something new to judge"."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

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
        self._consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=bootstrap_servers,
            group_id=group_id,
            # The rollup is what gets judged; the messages only wake the agent, so a new group
            # need not replay history (the start-up pass covers the lookback).
            auto_offset_reset="latest",
            enable_auto_commit=False,
        )
        self._started = False

    @property
    def assigned(self) -> bool:
        """True once the consumer holds its partitions."""
        return self._started and bool(self._consumer.assignment())

    async def run(self) -> None:
        """Connect (retrying while Kafka is away), then evaluate per batch; cancel to stop."""
        await self._start()
        try:
            while True:
                batches = await self._consumer.getmany(timeout_ms=1000, max_records=1000)
                if not batches:
                    continue
                try:
                    await self._on_windows()
                except Exception:
                    # Offsets stay uncommitted; the timer's next pass judges these windows.
                    log.exception("evaluation after closed windows failed")
                    continue
                try:
                    await self._consumer.commit()
                except KafkaError as exc:  # a rebalance or broker restart; the next batch commits
                    log.warning("windows topic offsets not committed: %r", exc)
        finally:
            await self._consumer.stop()

    async def _start(self) -> None:
        delay = 0.5
        while True:
            try:
                await self._consumer.start()
            except KafkaError as exc:
                log.warning("Kafka not reachable for the windows topic (%r); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._started = True
            return
