"""An asyncpg pool that waits for PostgreSQL instead of failing its owner's start; shared by the
workers and the alert agent."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from ops_common.backoff import retry_forever

log = logging.getLogger(__name__)

#: What "PostgreSQL is not there right now" looks like to asyncpg. InternalClientError is
#: included because a connection the server terminates in the middle of a query can surface
#: as "cannot switch to state 12; another operation (2) is in progress" (MagicStack/asyncpg#1069).
UNAVAILABLE = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


class PostgresPool:
    """Owns one asyncpg pool for one role. `start()` and `stop()` are idempotent."""

    def __init__(self, dsn: str, *, max_size: int = 4, retry_max_s: float = 10.0) -> None:
        self._dsn = dsn
        self._max_size = max_size
        self.retry_max_s = retry_max_s
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Create the pool, waiting with exponential back-off while PostgreSQL is down."""
        async with self._lock:
            if self._pool is None:
                retrying = retry_forever(
                    UNAVAILABLE,
                    what="connecting to PostgreSQL",
                    log=log,
                    max_delay_s=self.retry_max_s,
                )
                self._pool = await retrying(self._create)

    async def _create(self) -> asyncpg.Pool:
        # A coroutine function of its own: create_pool returns an awaitable Pool, which the
        # retry would otherwise take as a finished result and never initialise.
        return await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._max_size)

    async def stop(self) -> None:
        """Close the pool."""
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def ready(self) -> asyncpg.Pool:
        """The pool, started if needed; raises InterfaceError once stopped for good."""
        await self.start()
        if self._pool is None:
            raise asyncpg.InterfaceError("the pool is stopped")
        return self._pool

    async def ping(self, timeout: float = 2.0) -> bool:
        """True when PostgreSQL answers now."""
        if self._pool is None:
            return False
        try:
            await asyncio.wait_for(self._pool.fetchval("SELECT 1"), timeout)
        except (TimeoutError, *UNAVAILABLE):
            return False
        return True
