"""A pipeline of its own for a test: unique topics and consumer group, worker processes."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import pytest
from aiohttp.test_utils import TestClient, TestServer

from devstack.processes import ManagedProcess
from ingest_gateway.app import create_app
from ingest_gateway.routes import PRODUCER
from ops_common.settings import Settings
from opsctl.topics import ensure_topics, pipeline_topics
from support.helpers import KEY_ALL, KEY_LIMITED, LIMITED_APP, wait_http_ok
from support.services import TEST_STACK


@dataclass
class Pipeline:
    """Environment for one gateway + workers setup, and the processes it started."""

    env: dict[str, str]
    processes: list[ManagedProcess] = field(default_factory=list)  #: started here, to stop

    @classmethod
    def create(cls, bootstrap: str, ingest_dsn: str, rollup_dsn: str, **extra: str) -> Pipeline:
        """Fresh topic names and group id; topics created on `bootstrap`."""
        suffix = uuid.uuid4().hex[:8]
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "OPS_INGEST_DATABASE_URL": ingest_dsn,
            "OPS_ROLLUP_DATABASE_URL": rollup_dsn,
            "OPS_TELEMETRY_TOPIC": f"ops.telemetry.{suffix}",
            "OPS_DEAD_LETTER_TOPIC": f"ops.telemetry.dlq.{suffix}",
            "OPS_WINDOWS_TOPIC": f"ops.windows.5m.{suffix}",
            "OPS_WORKER_APP_ID": f"ops-workers-{suffix}",
            "OPS_WORKER_BATCH_WITHIN_S": "0.1",
            "OPS_WINDOW_GRACE_S": "2",
            **extra,
        }
        pipeline = cls(env)
        settings = pipeline.settings()
        asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, pipeline_topics(settings)))
        return pipeline

    def settings(self, **overrides: object) -> Settings:
        """Settings for an in-process gateway on this pipeline, with the test API keys;
        `overrides` (by variable name) win."""
        values: dict[str, object] = {
            **self.env,
            "OPS_API_KEYS": {KEY_ALL: ["*"], KEY_LIMITED: [LIMITED_APP]},
            "OPS_PRODUCE_TIMEOUT_S": 3.0,
            **overrides,
        }
        return Settings(**values)  # type: ignore[arg-type]

    def start_worker(self, port: int, *, wait: bool = True, **extra_env: str) -> ManagedProcess:
        """Start one `python -m stream_workers` serving HTTP on `port`; wait until ready."""
        name = f"worker-{self.env['OPS_WORKER_APP_ID']}-{port}"
        env = {"OPS_WORKER_HTTP_PORT": str(port), "OPS_WORKER_DATA_DIR": str(TEST_STACK / name)}
        return self._start("stream_workers", name, port, {**env, **extra_env}, wait=wait)

    def start_gateway(self, port: int, **extra_env: str) -> ManagedProcess:
        """Start one `python -m ingest_gateway` on `port` with the test keys (no rate limit);
        wait until ready. Stopped with the pipeline."""
        env = {
            "OPS_API_KEYS": json.dumps({KEY_ALL: ["*"]}),
            "OPS_GATEWAY_PORT": str(port),
            "OPS_RATE_LIMIT_EVENTS_PER_S": "0",
        }
        name = f"gateway-{self.env['OPS_WORKER_APP_ID']}-{port}"
        return self._start("ingest_gateway", name, port, {**env, **extra_env})

    def _start(
        self, module: str, name: str, port: int, env: dict[str, str], *, wait: bool = True
    ) -> ManagedProcess:
        process = ManagedProcess(
            name,
            [sys.executable, "-m", module],
            log_path=TEST_STACK / "logs" / f"{name}.log",
            env={**os.environ, **self.env, **env},
        ).start()
        self.processes.append(process)
        if wait:
            wait_http_ok(f"http://127.0.0.1:{port}/readyz", process, timeout=90)
        return process

    def stop(self) -> None:
        """Stop every process this pipeline started."""
        for process in self.processes:
            process.stop()


@asynccontextmanager
async def serve_gateway(settings: Settings) -> AsyncIterator[TestClient]:
    """The gateway app served in-process on a real socket, its producer connected."""
    app = create_app(settings)
    async with TestClient(TestServer(app)) as client:
        if not await app[PRODUCER].wait_connected(30):
            pytest.fail(f"gateway producer did not reach {settings.kafka_bootstrap_servers}")
        yield client
