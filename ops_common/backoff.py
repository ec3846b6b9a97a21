"""Retrying an operation forever with capped exponential back-off: how every process here
waits out a dependency (PostgreSQL, Kafka) that is away for a while."""

from __future__ import annotations

import logging
from collections.abc import Callable

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    wait_exponential,
)

FIRST_DELAY_S = 0.2


def retry_forever(
    retry_on: type[BaseException] | tuple[type[BaseException], ...],
    *,
    unless: tuple[type[BaseException], ...] = (),
    what: str,
    log: logging.Logger,
    max_delay_s: float,
    on_retry: Callable[[], None] | None = None,
    traceback: bool = False,
) -> AsyncRetrying:
    """An `AsyncRetrying` that calls again after `retry_on` errors (except those also of
    `unless`), waiting 0.2 s doubling up to `max_delay_s`, and never gives up; other errors
    propagate at once.

    Each retry is logged as a warning naming `what` (with the traceback when `traceback`:
    for errors nobody expected) and counted through `on_retry`.
    Use as `await retry_forever(...)(coroutine_function, *args)`; the function must be a
    coroutine function (tenacity calls anything else synchronously and returns its result).
    """

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s failed (%r); retrying in %.1fs",
            what,
            error,
            delay,
            exc_info=error if traceback else None,
        )
        if on_retry is not None:
            on_retry()

    return AsyncRetrying(
        retry=retry_if_exception_type(retry_on) & retry_if_not_exception_type(unless),
        wait=wait_exponential(multiplier=FIRST_DELAY_S, max=max_delay_s),
        before_sleep=before_sleep,
        reraise=True,
    )
