"""Timing a block or a function and recording it as one event: ok unless it raised, latency in
milliseconds, the exception's class name as the error code."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Protocol, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Tracker(Protocol):
    def track(
        self,
        event: str,
        ok: bool,
        latency_ms: int | None = None,
        err_code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None: ...


class Timed:
    """`with`, `async with`, or a decorator (sync or async functions)."""

    def __init__(self, tracker: Tracker, event: str, extra: dict[str, Any] | None = None) -> None:
        self._tracker = tracker
        self._event = event
        self._extra = extra
        self._started = 0.0

    def __enter__(self) -> Timed:
        self._started = time.perf_counter()
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        latency_ms = round((time.perf_counter() - self._started) * 1000)
        self._tracker.track(
            self._event,
            ok=et is None,
            latency_ms=latency_ms,
            err_code=None if et is None else et.__name__[:128],
            extra=self._extra,
        )

    async def __aenter__(self) -> Timed:
        return self.__enter__()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.__exit__(et, e, tb)

    def __call__(self, function: F) -> F:
        """Decorate `function`: each call is timed and recorded."""
        tracker, event, extra = self._tracker, self._event, self._extra
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def timed_coroutine(*args: Any, **kwargs: Any) -> Any:
                async with Timed(tracker, event, extra):
                    return await function(*args, **kwargs)

            return timed_coroutine  # type: ignore[return-value]

        @functools.wraps(function)
        def timed_function(*args: Any, **kwargs: Any) -> Any:
            with Timed(tracker, event, extra):
                return function(*args, **kwargs)

        return timed_function  # type: ignore[return-value]
