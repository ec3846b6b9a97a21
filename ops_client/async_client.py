"""`AsyncOpsTelemetry`: the client for asyncio code. `track()` only appends to a bounded buffer;
a background task sends a batch when `max_batch` events wait or `flush_interval_s` passed."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import deque
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, TypedDict

import httpx

from .retry import RetryPolicy
from .sender import BatchSender, Outcome
from .stats import ClientStats
from .timing import Timed

log = logging.getLogger(__name__)

#: The gateway accepts at most this many events per request (OPS_MAX_BATCH_EVENTS default).
GATEWAY_MAX_BATCH = 1000


class ClientOptions(TypedDict, total=False):
    """The keyword options of both clients (`AsyncOpsTelemetry` has their defaults)."""

    max_batch: int
    flush_interval_s: float
    max_buffer: int
    gzip: bool
    retry: RetryPolicy | None
    timeout_s: float
    transport: httpx.AsyncBaseTransport | None


class AsyncOpsTelemetry:
    """Batches events for one app and env and sends them to the gateway's /telemetry URL."""

    def __init__(
        self,
        url: str,
        api_key: str,
        app: str,
        env: str,
        *,
        max_batch: int = 500,
        flush_interval_s: float = 1.0,
        max_buffer: int = 10_000,
        gzip: bool = True,
        retry: RetryPolicy | None = None,
        timeout_s: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Send to `url` (the gateway's /telemetry) with `api_key`, as `app` in `env`.

        `max_batch` events per request (1..1000), at least every `flush_interval_s`; at most
        `max_buffer` events held (more are counted as dropped); bodies gzip'd when `gzip`;
        `retry` sets attempts and back-off; `timeout_s` bounds each request; `transport`
        replaces the network (tests).
        """
        if not 1 <= max_batch <= GATEWAY_MAX_BATCH:
            raise ValueError(f"max_batch must be 1..{GATEWAY_MAX_BATCH}")
        self.app, self.env = app, env
        self.stats = ClientStats()
        self._max_batch = max_batch
        self._interval = flush_interval_s
        self._buffer: deque[dict[str, Any]] = deque()
        self._max_buffer = max_buffer
        self._http = httpx.AsyncClient(timeout=timeout_s, transport=transport)
        self._sender = BatchSender(
            url, api_key, self._http, policy=retry or RetryPolicy(), compress=gzip
        )
        self._wake = asyncio.Event()
        self._send_lock = asyncio.Lock()
        self._flusher: asyncio.Task[None] | None = None
        self._closed = False

    def track(
        self,
        event: str,
        ok: bool,
        latency_ms: int | None = None,
        err_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Queue one event (never blocks); counted as dropped when the buffer is full."""
        self.stats.tracked += 1
        if self._closed or len(self._buffer) >= self._max_buffer:
            self.stats.dropped += 1
            return
        item: dict[str, Any] = {
            "id": str(uuid.uuid4()),
            "ts": datetime.now(UTC).isoformat(),
            "app": self.app,
            "env": self.env,
            "event": event,
            "ok": ok,
        }
        if latency_ms is not None:
            item["latency_ms"] = latency_ms
        if err_code is not None:
            item["err_code"] = err_code
        if extra is not None:
            item["extra"] = extra
        self._buffer.append(item)
        self._start_flusher()
        if len(self._buffer) >= self._max_batch:
            self._wake.set()

    def timed(self, event: str, extra: dict[str, Any] | None = None) -> Timed:
        """Time a block (`with`/`async with`) or a function (decorator) as one event."""
        return Timed(self, event, extra)

    @property
    def buffered(self) -> int:
        """Events waiting to be sent."""
        return len(self._buffer)

    async def flush(self) -> None:
        """Send everything buffered now, in batches; returns when each batch has ended."""
        async with self._send_lock:
            while self._buffer:
                count = min(len(self._buffer), self._max_batch)
                batch = [self._buffer.popleft() for _ in range(count)]
                try:
                    outcome = await self._sender.send(batch)
                except BaseException:
                    # Cancelled (closing) or broken mid-send: the events go back, same ids.
                    self._requeue(batch)
                    raise
                self.stats.retries = self._sender.retries
                if outcome is Outcome.SENT:
                    self.stats.sent += len(batch)
                elif outcome is Outcome.REJECTED:
                    self.stats.rejected += len(batch)
                else:
                    # Keep the events (same ids) for the next flush rather than lose them.
                    self._requeue(batch)
                    return

    async def aclose(self) -> None:
        """Flush what is buffered and stop; later track() calls count as dropped."""
        self._closed = True
        if self._flusher is not None:
            # Woken rather than cancelled: Python 3.11's wait_for can swallow a cancellation
            # that arrives as the wake-up does, and the task would run on.
            self._wake.set()
            await self._flusher
            self._flusher = None
        try:
            await self.flush()
        finally:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncOpsTelemetry:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _requeue(self, batch: list[dict[str, Any]]) -> None:
        room = self._max_buffer - len(self._buffer)
        keep = batch[:room] if room > 0 else []
        self.stats.dropped += len(batch) - len(keep)
        self._buffer.extendleft(reversed(keep))

    def _start_flusher(self) -> None:
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_periodically())

    async def _flush_periodically(self) -> None:
        while not self._closed:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval):  # not wait_for: see aclose()
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # never let the background task die: the next tick retries
                log.exception("ops telemetry: flush failed")
