"""Connecting an aiokafka client (producer or consumer) in the background, the one way every
process does it: retry with back-off while Kafka is away, and never cancel a `start()` half-way
(aiokafka leaks the bootstrap socket when a start is cancelled). Also a back-off for aiokafka's
metadata refresh, which has none (`add_metadata_backoff`, installed process-wide at start-up by
`add_metadata_backoff_to_every_client`)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Collection
from typing import Any, Generic, Protocol, TypeVar

import aiokafka
from aiokafka.client import AIOKafkaClient
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)


class _Startable(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ClientT = TypeVar("ClientT", bound=_Startable)


class BackgroundKafkaClient(Generic[ClientT]):
    """Owns one aiokafka client built by `factory`; `start()` returns at once."""

    def __init__(
        self,
        factory: Callable[[], ClientT],
        name: str,
        *,
        stop_wait_s: float = 15,
        client_stop_s: float | None = None,
    ):
        self._factory = factory
        self._name = name
        self._stop_wait_s = stop_wait_s
        #: How long the client's own stop (a producer's final flush) may take; None: no bound.
        self._client_stop_s = client_stop_s
        self._client: ClientT | None = None
        self._connected = asyncio.Event()
        self._stopping = asyncio.Event()
        self._connector: asyncio.Task[None] | None = None
        self._retiring: set[asyncio.Task[None]] = set()

    @property
    def client(self) -> ClientT | None:
        """The connected client, or None while not connected."""
        return self._client if self._connected.is_set() else None

    def start(self) -> None:
        """Begin connecting in the background."""
        if self._connector is None and self._client is None:
            self._stopping.clear()
            self._connector = asyncio.create_task(self._connect_until_up())

    def replace(self) -> None:
        """Drop the current client and connect a new one, for a client stuck in a state it
        cannot leave by itself (an idempotent producer out of sequence after a broker restart:
        aio-libs/aiokafka#1017). The old client is stopped in the background."""
        if self._client is None or self._stopping.is_set():
            return  # not connected (yet), or already being replaced
        old, self._client = self._client, None
        self._connected.clear()
        log.warning("%s: replacing the Kafka client", self._name)
        retiring = asyncio.create_task(old.stop())
        self._retiring.add(retiring)
        retiring.add_done_callback(self._retiring.discard)
        self._connector = asyncio.create_task(self._connect_until_up())

    async def wait_connected(self, timeout: float | None = None) -> ClientT | None:
        """The client once connected; None on timeout."""
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can swallow a cancellation
            # that arrives as the client connects, and a cancelled caller would run on.
            async with asyncio.timeout(timeout):
                await self._connected.wait()
        except TimeoutError:
            return None
        return self._client

    async def stop(self) -> None:
        """Let a connection attempt finish, then stop the client. Safe to call twice."""
        self._stopping.set()
        if self._connector is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._connector), self._stop_wait_s)
            except TimeoutError:
                self._connector.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._connector
            self._connector = None
        self._connected.clear()
        if self._client is not None:
            client, self._client = self._client, None
            try:
                async with asyncio.timeout(self._client_stop_s):
                    await client.stop()
            except TimeoutError:
                # Kafka is away: what is still buffered was never acknowledged to anyone.
                log.warning(
                    "%s: gave up stopping cleanly after %ss", self._name, self._client_stop_s
                )
        if self._retiring:
            await asyncio.wait(self._retiring, timeout=self._stop_wait_s)

    async def _connect_until_up(self) -> None:
        delay = 0.2
        while not self._stopping.is_set():
            client = self._factory()
            try:
                await client.start()
            except (KafkaError, OSError) as exc:
                log.warning(
                    "%s: Kafka not reachable yet (%r); retry in %.1fs", self._name, exc, delay
                )
                await client.stop()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
                delay = min(delay * 2, 5.0)
                continue
            self._client = client
            self._connected.set()
            log.info("%s connected to Kafka", self._name)
            return


#: aiokafka releases whose private `AIOKafkaClient._metadata_update` / `_md_synchronizer`
#: `add_metadata_backoff` was checked against (its unit test fails on any other release).
METADATA_BACKOFF_CHECKED = ("0.14.",)
#: Longest pause between two failed metadata refreshes (the Java client's
#: retry.backoff.max.ms default, KIP-580).
METADATA_BACKOFF_MAX_S = 1.0


def add_metadata_backoff(client: AIOKafkaClient, *, max_s: float = METADATA_BACKOFF_MAX_S) -> None:
    """Make `client` pause after a failed background metadata refresh: its `retry_backoff_ms`
    first, doubling up to `max_s`, back to the start after a refresh that works.

    Why: in aiokafka 0.13/0.14 nothing waits between two refreshes that fail. The producer's
    `Sender._sender_routine` (aiokafka/producer/sender.py:155-170), while a partition it holds
    a batch for has no known leader, only awaits `client.force_metadata_update()`; that wakes
    `_md_synchronizer` (aiokafka/client.py:248-271), whose `_metadata_update` (client.py:284-328)
    fails at once when every broker refuses the connection ("Unable connect to node", "Unable to
    update metadata", both at ERROR), and the sender asks again: one core busy for as long as
    Kafka is down (docs/reliability.md, broker-outage; `_maybe_wait_for_pid`, sender.py:206-208,
    loops the same way). Upstream: aio-libs/aiokafka#496 (reopened 2025 for this CPU flood;
    open fix aio-libs/aiokafka#1014). The pause goes where the refresh completes, so every
    waiter on `force_metadata_update()` waits with it; one-off `fetch_all_metadata()` calls (the
    gateway's readiness check) keep failing fast.

    On an aiokafka release not in METADATA_BACKOFF_CHECKED this logs a warning and changes
    nothing (the client works, it may spin as before); the unit test fails there first.
    """
    if not aiokafka.__version__.startswith(METADATA_BACKOFF_CHECKED) or not hasattr(
        client, "_metadata_update"
    ):
        log.warning(
            "aiokafka %s: metadata back-off not installed (checked against %s)",
            aiokafka.__version__,
            METADATA_BACKOFF_CHECKED,
        )
        return
    refresh = client._metadata_update
    first_s = max(client._retry_backoff, 0.01)
    delay = first_s

    async def _metadata_update_with_backoff(
        cluster_metadata: ClusterMetadata, topics: Collection[str]
    ) -> bool:
        nonlocal delay
        updated: bool = await refresh(cluster_metadata, topics)
        if cluster_metadata is not client.cluster:
            return updated  # fetch_all_metadata(): its caller decides what a failure means
        if updated:
            delay = first_s
        else:
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_s)
        return updated

    patched: Any = client
    patched._metadata_update = _metadata_update_with_backoff


def add_metadata_backoff_to_every_client(*, max_s: float = METADATA_BACKOFF_MAX_S) -> None:
    """Give every `AIOKafkaClient` this process creates from now on the metadata back-off,
    including the ones Faust builds inside its producer and consumers, which nothing else can
    reach. Each process calls it once at start-up; calling it again changes nothing."""
    original = AIOKafkaClient.__init__
    if getattr(original, "_with_metadata_backoff", False):
        return

    @functools.wraps(original)
    def init_with_backoff(self: AIOKafkaClient, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        add_metadata_backoff(self, max_s=max_s)

    init_with_backoff._with_metadata_backoff = True  # type: ignore[attr-defined]
    AIOKafkaClient.__init__ = init_with_backoff  # type: ignore[method-assign]
