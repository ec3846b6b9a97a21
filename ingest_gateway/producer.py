"""Producing a request's events to Kafka: all sends in flight at once, acknowledged together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from types import TracebackType

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber

from ops_common.http.errors import KafkaUnavailable
from ops_common.kafka_client import BackgroundKafkaClient
from ops_common.settings import Settings

from .breaker import KafkaBreaker
from .metrics import GatewayMetrics

log = logging.getLogger(__name__)

Record = tuple[bytes, bytes]  # (key, value)

#: How long the breaker's probe waits for a metadata answer (a broker that is up answers in ms).
PROBE_TIMEOUT_S = 1.0


class EventProducer:
    """Owns the aiokafka producer (idempotent, acks=all) and bounds events in flight.

    `start()` returns at once and connects in the background (`BackgroundKafkaClient`), so the
    gateway answers 503 rather than refusing to boot while Kafka is down. While Kafka does not
    answer at all, a `KafkaBreaker` answers 503 before anything is handed to the producer.
    """

    def __init__(self, settings: Settings, metrics: GatewayMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        # Bounded stop: SIGTERM must end the process within its drain time even with Kafka
        # down; events still buffered then were answered 503, never 201.
        self._kafka = BackgroundKafkaClient(
            self._build_producer,
            "gateway producer",
            stop_wait_s=settings.produce_timeout_s,
            client_stop_s=settings.produce_timeout_s,
        )
        self._inflight = 0
        self._breaker = KafkaBreaker(
            lambda: self._kafka_answers(PROBE_TIMEOUT_S),
            interval_s=settings.kafka_probe_interval_s,
            on_change=lambda is_open: metrics.kafka_breaker_open.set(int(is_open)),
        )
        #: The one metadata request in progress (the breaker's probes share it).
        self._metadata_check: asyncio.Task[bool] | None = None

    async def start(self) -> None:
        """Begin connecting to Kafka in the background."""
        self._kafka.start()

    async def stop(self) -> None:
        """Flush what is in flight and close the producer."""
        await self._breaker.stop()
        check = self._metadata_check
        if check is not None and not check.done():
            # Let it end by itself first: a metadata request cancelled while it connects can
            # leave its new connection out of the client's list, and so open after stop().
            await asyncio.wait({check}, timeout=self._settings.produce_timeout_s)
            check.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await check
        await self._kafka.stop()

    async def __aenter__(self) -> EventProducer:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def wait_connected(self, timeout: float) -> bool:
        """Wait until the producer has connected once; False on timeout."""
        return await self._kafka.wait_connected(timeout) is not None

    @property
    def connected(self) -> bool:
        """True once the producer has connected to Kafka (and until it is being replaced).

        This is the gateway's readiness, deliberately not "Kafka answers now": in an outage of
        the shared Kafka every gateway would turn unready, Kubernetes would empty the Service,
        and clients would get connection errors from the load balancer instead of this
        process's 503 with Retry-After (the breaker answers those at once).
        """
        return self._kafka.client is not None

    async def _kafka_answers(self, timeout: float) -> bool:
        # One metadata request at a time, never cancelled on timeout (see stop()): a probe
        # that gives up leaves it running, and the next probe waits on the same request.
        producer = self._kafka.client
        if producer is None:
            return False
        check = self._metadata_check
        if check is None or check.done():
            check = asyncio.create_task(_brokers_answer(producer))
            self._metadata_check = check
        done, _ = await asyncio.wait({check}, timeout=timeout)
        if not done or check.cancelled():
            return False
        if (unexpected := check.exception()) is not None:
            log.warning("Kafka metadata check failed: %r", unexpected)
            return False
        return check.result()

    async def send_all(self, records: Sequence[Record]) -> None:
        """Produce every record and return once Kafka acknowledged all of them.

        Raises `KafkaUnavailable` (503) when Kafka is not connected, the in-flight budget is
        spent, or the acks do not arrive within the produce timeout. On timeout the sends are
        not cancelled: they may still land, which is why events carry ids the workers
        de-duplicate on.
        """
        settings = self._settings
        producer = self._kafka.client
        if producer is None or self._breaker.is_open:
            raise KafkaUnavailable("Kafka is not reachable", retry_after=settings.retry_after_s)
        if self._inflight + len(records) > settings.max_inflight_events:
            raise KafkaUnavailable(
                "too many events are waiting for Kafka", retry_after=settings.retry_after_s
            )
        self._track_inflight(len(records))
        started = time.perf_counter()
        delivery = asyncio.create_task(self._deliver(producer, records))
        delivery.add_done_callback(lambda _: self._track_inflight(-len(records)))
        delivery.add_done_callback(self._replace_if_out_of_sequence)
        try:
            await asyncio.wait_for(asyncio.shield(delivery), settings.produce_timeout_s)
        except (TimeoutError, KafkaError) as exc:
            log.warning("produce failed: %r", exc)
            if isinstance(exc, OutOfOrderSequenceNumber):
                self._kafka.replace()
            else:
                self._breaker.produce_failed()
            raise KafkaUnavailable(
                "Kafka did not acknowledge the events in time; nothing was accepted",
                retry_after=settings.retry_after_s,
            ) from None
        self._metrics.produce_duration.observe(time.perf_counter() - started)

    def _replace_if_out_of_sequence(self, delivery: asyncio.Task[None]) -> None:
        # The idempotent producer never recovers from this by itself (aio-libs/aiokafka#1017):
        # a fresh producer gets a new producer id. Requests in flight were answered 503 (or
        # time out to 503), so their clients resend with the same event ids.
        if not delivery.cancelled() and isinstance(delivery.exception(), OutOfOrderSequenceNumber):
            self._kafka.replace()

    async def _deliver(self, producer: AIOKafkaProducer, records: Sequence[Record]) -> None:
        topic = self._settings.telemetry_topic
        # send() appends to the open batch of the event's partition, which concurrent requests
        # share, so batches fill up to max_batch_size. (One send_batch() per request and
        # partition was tried: fewer Python calls, but with idempotence a partition has one
        # batch in flight, and small per-request batches queued behind each other.)
        acks = [await producer.send(topic, value=value, key=key) for key, value in records]
        await asyncio.gather(*acks)

    def _track_inflight(self, delta: int) -> None:
        self._inflight += delta
        self._metrics.inflight_events.set(self._inflight)

    def _build_producer(self) -> AIOKafkaProducer:
        settings = self._settings
        producer = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id="ops-ingest-gateway",
            acks="all",
            enable_idempotence=True,
            linger_ms=settings.producer_linger_ms,
            max_batch_size=settings.producer_max_batch_bytes,
            # Undelivered batches expire after this, which frees the in-flight budget.
            request_timeout_ms=max(int(settings.produce_timeout_s * 1000) * 4, 10_000),
        )
        return producer


async def _brokers_answer(producer: AIOKafkaProducer) -> bool:
    """True when a broker answers a metadata request (with at least one broker in it)."""
    try:
        cluster = await producer.client.fetch_all_metadata()
    except (KafkaError, OSError) as exc:
        log.debug("Kafka metadata request failed: %r", exc)
        return False
    return bool(cluster.brokers())
