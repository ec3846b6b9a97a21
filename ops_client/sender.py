"""Posting one batch to the gateway until it is acknowledged, refused for good, or the retry
policy gives up. The batch keeps its event ids across attempts, so a retry after an answer that
got lost stores nothing twice."""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Sequence
from enum import Enum
from typing import Any

import httpx
import orjson

from .retry import RETRYABLE_STATUSES, RetryPolicy

log = logging.getLogger(__name__)


class Outcome(Enum):
    """How a batch ended."""

    SENT = "sent"
    REJECTED = "rejected"  #: the gateway refused it for good (bad event, key, size)
    GAVE_UP = "gave_up"  #: still failing after every attempt


class BatchSender:
    """POSTs JSON arrays (gzip'd) with the API key; retries per `RetryPolicy`."""

    def __init__(
        self,
        url: str,
        api_key: str,
        client: httpx.AsyncClient,
        *,
        policy: RetryPolicy,
        compress: bool = True,
    ) -> None:
        self._url = url
        self._client = client
        self._policy = policy
        self._compress = compress
        self._headers = {"X-API-Key": api_key, "Content-Type": "application/json"}
        if compress:
            self._headers["Content-Encoding"] = "gzip"
        self.retries = 0

    async def send(self, events: Sequence[dict[str, Any]]) -> Outcome:
        """Deliver `events` as one request body."""
        body = orjson.dumps(list(events))
        if self._compress:
            body = gzip.compress(body, compresslevel=5)
        for attempt in range(1, self._policy.attempts + 1):
            retry_after: str | None = None
            try:
                response = await self._client.post(self._url, content=body, headers=self._headers)
            except httpx.TransportError as exc:  # connect, read, timeouts
                log.warning("ops telemetry: %s: %r", self._url, exc)
            else:
                if response.status_code == 201:
                    return Outcome.SENT
                if response.status_code not in RETRYABLE_STATUSES:
                    log.error(
                        "ops telemetry: %d events refused (%d): %s",
                        len(events),
                        response.status_code,
                        response.text[:500],
                    )
                    return Outcome.REJECTED
                retry_after = response.headers.get("Retry-After")
            if attempt < self._policy.attempts:
                self.retries += 1
                await asyncio.sleep(self._policy.delay(attempt, retry_after))
        return Outcome.GAVE_UP
