"""`OpsTelemetry`: the same client for threaded code. It runs an `AsyncOpsTelemetry` on an event
loop in a daemon thread of its own; `track()` hands events over without blocking, and the
client flushes and stops at interpreter exit."""

from __future__ import annotations

import asyncio
import atexit
import threading
from types import TracebackType
from typing import Any

from typing_extensions import Unpack

from .async_client import AsyncOpsTelemetry, ClientOptions
from .stats import ClientStats
from .timing import Timed


class OpsTelemetry:
    """Thread-safe; one per process is enough."""

    def __init__(
        self, url: str, api_key: str, app: str, env: str, **options: Unpack[ClientOptions]
    ) -> None:
        """The same arguments as `AsyncOpsTelemetry`, which documents their defaults."""
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="ops-telemetry", daemon=True
        )
        self._thread.start()
        self._client: AsyncOpsTelemetry = self._call(_build(url, api_key, app, env, options))
        self._closed = False
        atexit.register(self.close)

    @property
    def stats(self) -> ClientStats:
        """Counters: tracked, sent, dropped, rejected, retries."""
        return self._client.stats

    def track(
        self,
        event: str,
        ok: bool,
        latency_ms: int | None = None,
        err_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """Queue one event; returns at once."""
        if self._closed:
            self._client.stats.tracked += 1
            self._client.stats.dropped += 1
            return
        self._loop.call_soon_threadsafe(self._client.track, event, ok, latency_ms, err_code, extra)

    def timed(self, event: str, extra: dict[str, Any] | None = None) -> Timed:
        """Time a block (`with`) or a function (decorator) as one event."""
        return Timed(self, event, extra)

    def flush(self, timeout: float | None = 60.0) -> None:
        """Send everything tracked so far; blocks until done or `timeout`."""
        self._call(self._client.flush(), timeout)

    def close(self, timeout: float | None = 60.0) -> None:
        """Flush and stop the client's thread. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        try:
            self._call(self._client.aclose(), timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            self._loop.close()

    def __enter__(self) -> OpsTelemetry:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _call(self, coroutine: Any, timeout: float | None = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)


async def _build(
    url: str, api_key: str, app: str, env: str, options: ClientOptions
) -> AsyncOpsTelemetry:
    # Built on the client's own loop: its asyncio primitives belong there.
    return AsyncOpsTelemetry(url, api_key, app, env, **options)
