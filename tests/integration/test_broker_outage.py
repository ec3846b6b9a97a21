"""Kafka stopped -> 503 with Retry-After in bounded time; Kafka back -> 201 again; while it
is down a real gateway process stays (nearly) idle and hands nothing new to its producer.

Uses a broker of its own, so stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import socket
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest
from aiohttp.test_utils import TestClient
from support.helpers import KEY_ALL, event, wait_http_ok
from support.pipeline import serve_gateway
from support.services import KAFKA_PORT, ROOT, Broker, start_broker

from devstack.processes import ManagedProcess
from ops_common.settings import Settings
from opsctl.topics import ensure_topics, pipeline_topics

HEADERS = {"X-API-Key": KEY_ALL, "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def outage_broker() -> Iterator[Broker]:
    broker = start_broker("kafka-outage", KAFKA_PORT + 10)
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
async def outage_gateway(
    outage_broker: Broker, pipeline_settings: Settings
) -> AsyncIterator[TestClient]:
    settings = pipeline_settings.model_copy(
        update={
            "kafka_bootstrap_servers": outage_broker.bootstrap_servers,
            "produce_timeout_s": 2.0,
        }
    )
    await ensure_topics(settings.kafka_bootstrap_servers, pipeline_topics(settings))
    async with serve_gateway(settings) as client:
        yield client


async def post(client: TestClient) -> tuple[int, dict, dict]:
    response = await client.post(
        "/telemetry", data=orjson.dumps([event("outage")] * 10), headers=HEADERS
    )
    return response.status, await response.json(), dict(response.headers)


async def test_broker_stopped_gives_503_then_201_when_back(
    outage_broker: Broker, outage_gateway: TestClient
) -> None:
    assert (await post(outage_gateway))[0] == 201
    await asyncio.to_thread(outage_broker.stop)
    try:
        for _ in range(3):
            started = time.monotonic()
            status, body, headers = await post(outage_gateway)
            assert status == 503, body
            assert body["error"]["code"] == "kafka_unavailable"
            assert int(headers["Retry-After"]) > 0
            assert time.monotonic() - started < 5  # produce timeout is 2 s
        # Still ready: it answers 503 with Retry-After itself (docs/operations.md).
        assert (await outage_gateway.get("/readyz")).status == 200
        metrics = await (await outage_gateway.get("/metrics")).text()
        assert "gateway_kafka_breaker_open 1.0" in metrics
    finally:
        await asyncio.to_thread(outage_broker.start)

    deadline = time.monotonic() + 60
    status = 0
    while time.monotonic() < deadline and status != 201:
        status, _, _ = await post(outage_gateway)
        if status != 201:
            await asyncio.sleep(1)
    assert status == 201
    assert (await outage_gateway.get("/readyz")).status == 200


# --- a real gateway process through an outage ----------------------------------------------

#: Gateway CPU while the broker is down, in cores, under a light retrying load. aiokafka's
#: unthrottled metadata retry loop (aio-libs/aiokafka#496) kept the old gateway at 0.6 to 1 core
#: here (about 0.95 in the chaos run); with the back-off and the breaker it stays near 0.02.
MAX_CPU_CORES_WHILE_DOWN = 0.2
#: aiokafka's two ERROR lines per failed refresh: about 100,000 in 10 s before the back-off.
MAX_METADATA_ERRORS_WHILE_DOWN = 100
OUTAGE_WINDOW_S = 10.0


@dataclass
class Answer:
    """One request of the load and how it was answered."""

    sent: float
    done: float
    status: int
    retry_after: str | None


@dataclass
class RetryingLoad:
    """`clients` loops posting small batches; on 503 each waits Retry-After, as clients do."""

    url: str
    clients: int = 4
    answers: list[Answer] = field(default_factory=list)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    acked: asyncio.Event = field(default_factory=asyncio.Event)  #: set on every 201

    async def run(self) -> None:
        """Post until `stopping` is set."""
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(self._client(session) for _ in range(self.clients)))

    async def _client(self, session: aiohttp.ClientSession) -> None:
        body = orjson.dumps([event("outage-load")] * 20)
        while not self.stopping.is_set():
            sent = time.monotonic()
            async with session.post(f"{self.url}/telemetry", data=body, headers=HEADERS) as resp:
                await resp.read()
                answer = Answer(
                    sent, time.monotonic(), resp.status, resp.headers.get("Retry-After")
                )
            self.answers.append(answer)
            if answer.status == 201:
                self.acked.set()
            pause = float(answer.retry_after or 1) if answer.status == 503 else 0.05
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    await self.stopping.wait()

    def between(self, since: float, until: float) -> list[Answer]:
        """Answers to requests sent at or after `since` and answered by `until`."""
        return [a for a in self.answers if a.sent >= since and a.done <= until]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` so far (stat(5) fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def socket_inodes(pid: int) -> set[str]:
    """Inodes of the sockets `pid` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[len("socket:[") : -1])
    return inodes


def connections_to(pid: int, port: int) -> int:
    """TCP connections `pid` holds open to `port` (any state but LISTEN), from /proc/net/tcp*."""
    mine = socket_inodes(pid)
    count = 0
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            count += remote_port == port and fields[3] != "0A" and fields[9] in mine
    return count


def free_port() -> int:
    """A TCP port nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def gauge(session: aiohttp.ClientSession, url: str, name: str) -> float:
    """The value of an unlabelled Prometheus gauge of the gateway."""
    async with session.get(f"{url}/metrics") as response:
        text = await response.text()
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert match, f"{name} not exported"
    return float(match.group(1))


@pytest.fixture
def gateway_process(outage_broker: Broker, tmp_path: Path) -> Iterator[tuple[ManagedProcess, str]]:
    """`python -m ingest_gateway` (this tree's) producing to the outage broker, topics of its
    own; ResourceWarnings printed, so a socket left open shows in its log."""
    suffix = uuid.uuid4().hex[:8]
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": outage_broker.bootstrap_servers,
        "OPS_TELEMETRY_TOPIC": f"ops.telemetry.outage.{suffix}",
        "OPS_DEAD_LETTER_TOPIC": f"ops.telemetry.dlq.outage.{suffix}",
        "OPS_WINDOWS_TOPIC": f"ops.windows.5m.outage.{suffix}",
        "OPS_API_KEYS": json.dumps({KEY_ALL: ["*"]}),
        "OPS_GATEWAY_HOST": "127.0.0.1",
        "OPS_GATEWAY_PORT": str(port),
        "OPS_PRODUCE_TIMEOUT_S": "2",
        "OPS_RETRY_AFTER_S": "1",
        "PYTHONWARNINGS": "always::ResourceWarning",
    }
    ours = {name: value for name, value in env.items() if name.startswith(("OPS_", "KAFKA_"))}
    settings = Settings(**ours)  # type: ignore[arg-type]
    asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, pipeline_topics(settings)))
    process = ManagedProcess(
        f"gateway-outage-{suffix}",
        [sys.executable, "-m", "ingest_gateway"],
        log_path=tmp_path / "gateway.log",
        env=env,
        cwd=ROOT,
    ).start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http_ok(f"{url}/readyz", process, timeout=60)
        yield process, url
    finally:
        process.stop()


async def test_gateway_process_idles_through_an_outage_and_resumes(
    outage_broker: Broker, gateway_process: tuple[ManagedProcess, str]
) -> None:
    process, url = gateway_process
    assert process.process is not None
    pid = process.process.pid
    kafka_port = int(outage_broker.bootstrap_servers.rsplit(":", 1)[1])
    sockets_before = len(socket_inodes(pid))
    load = RetryingLoad(url)
    running = asyncio.create_task(load.run())
    async with aiohttp.ClientSession() as session:
        try:
            await asyncio.sleep(3)
            assert any(a.status == 201 for a in load.answers), "no 201 before the outage"
            # Stopped under load: produce requests in flight as the broker goes away is what
            # left partitions without a known leader and started aiokafka's loop.
            await asyncio.to_thread(outage_broker.stop)
            stopped = time.monotonic()
            try:
                # The requests in flight run into the produce timeout (2 s) first.
                await asyncio.sleep(4)
                window_start = time.monotonic()
                cpu_start = cpu_seconds(pid)
                errors_start = process.log_path.read_text().count("Unable to update metadata")
                inflight = [await gauge(session, url, "gateway_kafka_inflight_events")]
                while time.monotonic() < window_start + OUTAGE_WINDOW_S:
                    await asyncio.sleep(1)
                    inflight.append(await gauge(session, url, "gateway_kafka_inflight_events"))
                cores = (cpu_seconds(pid) - cpu_start) / (time.monotonic() - window_start)
                errors = process.log_path.read_text().count("Unable to update metadata")
                errors -= errors_start
                restarting = time.monotonic()
            finally:
                await asyncio.to_thread(outage_broker.start)

            load.acked.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(60):
                    await load.acked.wait()
        finally:
            load.stopping.set()
            await running
        # Connections from the load are gone; what is left is the gateway's own.
        await asyncio.sleep(1)
        sockets_after = len(socket_inodes(pid))
        to_kafka = connections_to(pid, kafka_port)

    down = load.between(stopped, restarting)
    # Shown with -s: the figures the bounds below were chosen from.
    print(
        f"\noutage: {cores:.3f} cores, {errors} metadata errors, in-flight {inflight}, "
        f"answers {sorted({a.status for a in down})} x{len(down)}, "
        f"sockets {sockets_before} -> {sockets_after}, {to_kafka} to Kafka"
    )
    assert down, "no answer while the broker was down"
    assert {a.status for a in down} == {503}, [a.status for a in down]
    assert all(a.retry_after and int(a.retry_after) > 0 for a in down)
    assert all(a.done - a.sent < 2 + 1 for a in down)  # within the produce timeout + 1 s
    assert cores < MAX_CPU_CORES_WHILE_DOWN, f"{cores:.2f} cores while Kafka was down"
    assert errors < MAX_METADATA_ERRORS_WHILE_DOWN, f"{errors} metadata errors logged in 10 s"
    # Nothing new is handed to the producer while Kafka does not answer.
    assert max(inflight) <= inflight[0], f"in-flight events while down: {inflight}"
    assert load.acked.is_set(), "ingestion did not resume within 60 s of the restart"
    # One producer (a replaced one, aiokafka#1017, is closed), one broker: one connection.
    assert to_kafka <= 1, f"{to_kafka} connections to Kafka after the outage"
    assert sockets_after <= sockets_before + 2, (sockets_before, sockets_after)
    assert process.stop() == 0
    log = process.log_path.read_text()
    assert "ResourceWarning" not in log, process.tail(60)
    assert "unclosed" not in log, process.tail(60)
