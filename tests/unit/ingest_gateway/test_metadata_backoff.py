"""Unit tests for the back-off the gateway's producer client gets on failed metadata refreshes
(ops_common.kafka_client.add_metadata_backoff, for aio-libs/aiokafka#496): no broker needed, a
client that knows no broker fails every refresh at once, as one whose brokers refuse does."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import aiokafka
import pytest
from aiokafka.client import AIOKafkaClient

from ops_common.kafka_client import (
    METADATA_BACKOFF_CHECKED,
    add_metadata_backoff,
    add_metadata_backoff_to_every_client,
)


def test_the_installed_aiokafka_is_one_the_backoff_was_checked_against() -> None:
    # On a new aiokafka: read client._md_synchronizer/_metadata_update and the sender's
    # unknown-leader branch again, and drop the back-off if upstream now waits by itself.
    assert aiokafka.__version__.startswith(METADATA_BACKOFF_CHECKED)


async def refreshes_in(client: AIOKafkaClient, seconds: float) -> int:
    """Drive the client like the sender does while a leader is unknown: force a refresh, wait
    for it, again; count the refreshes that ran."""
    calls = 0
    refresh = client._metadata_update

    async def counting(*args: object) -> bool:
        nonlocal calls
        calls += 1
        result: bool = await refresh(*args)
        return result

    client._metadata_update = counting  # type: ignore[method-assign]
    client._sync_task = asyncio.create_task(client._md_synchronizer())
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            async with asyncio.timeout(deadline - time.monotonic() + 0.1):
                await client.force_metadata_update()
    except TimeoutError:
        pass
    finally:
        await client.close()
    return calls


async def test_without_the_backoff_aiokafka_refreshes_without_pause() -> None:
    # The upstream behaviour the back-off exists for; if this fails, aiokafka fixed it.
    client = AIOKafkaClient(bootstrap_servers="127.0.0.1:9")
    assert await refreshes_in(client, 0.5) > 200


async def test_failed_refreshes_back_off_exponentially_to_the_cap() -> None:
    client = AIOKafkaClient(bootstrap_servers="127.0.0.1:9", retry_backoff_ms=50)
    add_metadata_backoff(client, max_s=0.2)
    # Pauses 0.05, 0.1, 0.2, 0.2, ...: about 6 refreshes in 1 s (fewer on a loaded machine,
    # never the hundreds of the unpatched client).
    assert 2 <= await refreshes_in(client, 1.0) <= 8


async def test_a_refresh_that_works_resets_the_pause() -> None:
    client = AIOKafkaClient(bootstrap_servers="127.0.0.1:9", retry_backoff_ms=200)
    results = iter([False, False, False, True, False])

    async def scripted(cluster_metadata: object, topics: object) -> bool:
        return next(results)

    client._metadata_update = scripted  # type: ignore[method-assign]
    add_metadata_backoff(client, max_s=10)
    pauses = []
    for _ in range(5):
        started = time.monotonic()
        await client._metadata_update(client.cluster, set())
        pauses.append(time.monotonic() - started)
    # 0.2, 0.4, 0.8 s after the failures (a loaded machine only adds), none after the success,
    # and the failure after it starts from 0.2 s again; the margin stays under the next step.
    for pause, expected in zip(pauses, [0.2, 0.4, 0.8, 0.0, 0.2], strict=True):
        assert expected <= pause < expected + 0.19, pauses


async def test_one_off_metadata_fetches_still_fail_fast() -> None:
    client = AIOKafkaClient(bootstrap_servers="127.0.0.1:9", retry_backoff_ms=1000)
    add_metadata_backoff(client)
    started = time.monotonic()
    with contextlib.suppress(aiokafka.errors.KafkaError):
        await client.fetch_all_metadata()
    assert time.monotonic() - started < 0.5


@pytest.fixture
def restored_client_init() -> Iterator[None]:
    """Undo the process-wide install after the test (other tests need the plain client)."""
    original = AIOKafkaClient.__init__
    try:
        yield
    finally:
        AIOKafkaClient.__init__ = original  # type: ignore[method-assign]


@pytest.mark.usefixtures("restored_client_init")
async def test_installed_process_wide_it_reaches_clients_built_inside_libraries() -> None:
    add_metadata_backoff_to_every_client(max_s=0.2)
    add_metadata_backoff_to_every_client(max_s=0.2)  # a second call must not stack pauses
    # A producer builds its AIOKafkaClient itself, as Faust's producer and consumers do.
    producer = aiokafka.AIOKafkaProducer(bootstrap_servers="127.0.0.1:9", retry_backoff_ms=50)
    try:
        assert 2 <= await refreshes_in(producer.client, 1.0) <= 8
    finally:
        await producer.stop()
