"""A circuit breaker in front of the producer: while Kafka does not answer at all, requests are
answered 503 at once instead of handing their events to a producer that cannot deliver them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class KafkaBreaker:
    """Closed (requests go to the producer) or open (they are refused at once).

    A failed or timed-out produce calls `produce_failed()`, which asks `probe` (cheap: does a
    broker answer a metadata request?) in the background, one probe at a time. A produce can
    time out while Kafka answers (leader elections, a slow broker): then nothing changes, so a
    partial outage keeps its 201s. When Kafka does not answer, the breaker opens and `probe`
    runs again every `interval_s` until Kafka answers, which closes it.

    Why open at all: every event handed to the producer while Kafka is away stays in its
    accumulator until Kafka is back or the batch expires, and clients resend the same events
    after their 503, so the buffer (and the process's memory) grew for as long as the outage
    lasted (docs/reliability.md, broker-outage).
    """

    def __init__(
        self,
        probe: Callable[[], Awaitable[bool]],
        *,
        interval_s: float,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._probe = probe
        self._interval_s = interval_s
        self._on_change = on_change
        self._open = False
        self._watcher: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    @property
    def is_open(self) -> bool:
        """True while Kafka is known not to answer: refuse requests without producing."""
        return self._open

    @property
    def checking(self) -> bool:
        """True while a probe loop runs (after a failure, until Kafka answered)."""
        return self._watcher is not None and not self._watcher.done()

    def produce_failed(self) -> None:
        """A produce failed or timed out: check Kafka in the background, unless already doing so."""
        if self._stopping.is_set() or self.checking:
            return
        self._watcher = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        """End the probe loop (a probe in progress is awaited by `probe`'s owner, not here)."""
        self._stopping.set()
        if self._watcher is not None and not self._watcher.done():
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        self._watcher = None

    async def _answers(self) -> bool:
        try:
            return await self._probe()
        except Exception:  # a probe that breaks must not leave the breaker open for good
            log.exception("Kafka probe failed")
            return False

    async def _watch(self) -> None:
        while not await self._answers():
            if not self._open:
                self._set(True)
                log.warning(
                    "Kafka does not answer: answering 503 at once, asking Kafka every %.1fs",
                    self._interval_s,
                )
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s):
                    await self._stopping.wait()
            if self._stopping.is_set():
                return
        if self._open:
            self._set(False)
            log.warning("Kafka answers again: requests go to the producer")

    def _set(self, is_open: bool) -> None:
        self._open = is_open
        if self._on_change is not None:
            self._on_change(is_open)
