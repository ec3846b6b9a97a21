"""The real processes a fault scenario runs on: PostgreSQL with the migrated database, a Kafka
broker (or the three-node cluster), and per scenario its own topics, consumer group, gateway
(`python -m ingest_gateway`) and workers (`python -m stream_workers`)."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import NewTopic

from devstack.kafka import KafkaServer
from devstack.postgres import PostgresServer
from devstack.processes import ManagedProcess, port_is_free, wait_http_ok
from devstack.stack import cache_dir
from devstack.system import ensure_system_tools
from ops_common.settings import Settings
from opsctl.migrate import migrate
from opsctl.topics import ensure_topics, pipeline_topics

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "ops_chaos"
#: Local throwaway servers on 127.0.0.1 only.
ROLE_PASSWORDS = {
    "ops_ingest": "chaos_ingest_pw",
    "ops_reader": "chaos_reader_pw",
    "ops_rollup": "chaos_rollup_pw",
    "ops_alerter": "chaos_alerter_pw",
}


@dataclass(frozen=True)
class ChaosPorts:
    """Ports of one fault environment: PostgreSQL on `postgres`, everything else from `base`
    (broker +0/+1, three-node cluster +10..+15, gateways +20.., workers +40.., alert agent
    +60, Slack stand-in +61)."""

    postgres: int
    base: int

    @property
    def kafka(self) -> int:
        """The single broker's client port."""
        return self.base

    @property
    def kafka_controller(self) -> int:
        """The single broker's controller port."""
        return self.base + 1

    @property
    def cluster_base(self) -> int:
        """First port of the three-node cluster (two per node)."""
        return self.base + 10

    def gateway(self, index: int = 0) -> int:
        """Port of gateway number `index` (one per scenario)."""
        return self.base + 20 + index

    def worker(self, index: int = 0) -> int:
        """HTTP port of worker number `index`."""
        return self.base + 40 + index

    @property
    def alert_agent(self) -> int:
        """HTTP port of the alert agent (`python -m alert_agent`)."""
        return self.base + 60

    @property
    def slack(self) -> int:
        """Port of the Slack stand-in the alert agent notifies."""
        return self.base + 61

    def all(self) -> list[int]:
        """Every port this environment may bind."""
        return [
            self.postgres,
            self.kafka,
            self.kafka_controller,
            *range(self.cluster_base, self.cluster_base + 6),
            *range(self.base + 20, self.base + 62),
        ]


@dataclass
class Tuning:
    """Settings the scenarios run the processes with (the rest are the defaults)."""

    window_grace_s: float = 2.0
    produce_timeout_s: float = 5.0
    retry_after_s: int = 2
    worker_session_timeout_s: float = 10.0
    db_retry_max_s: float = 10.0

    def as_env(self) -> dict[str, str]:
        """The variables, as the processes read them."""
        return {
            "OPS_WINDOW_GRACE_S": str(self.window_grace_s),
            "OPS_PRODUCE_TIMEOUT_S": str(self.produce_timeout_s),
            "OPS_RETRY_AFTER_S": str(self.retry_after_s),
            "OPS_WORKER_SESSION_TIMEOUT_S": str(self.worker_session_timeout_s),
            "OPS_DB_RETRY_MAX_S": str(self.db_retry_max_s),
        }


@dataclass
class Services:
    """PostgreSQL (migrated) and one Kafka broker under `root`, on `ports`."""

    root: Path
    ports: ChaosPorts
    tuning: Tuning = field(default_factory=Tuning)
    postgres: PostgresServer = field(init=False)
    kafka: KafkaServer = field(init=False)
    api_key: str = field(init=False)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.logs = self.root / "logs"
        self.postgres = PostgresServer(self.root / "pg", self.ports.postgres, logs_dir=self.logs)
        self.kafka = KafkaServer(
            self.root / "kafka",
            self.ports.kafka,
            self.ports.kafka_controller,
            cache_dir=cache_dir(),
            logs_dir=self.logs,
        )
        self.api_key = secrets.token_urlsafe(18)

    @property
    def admin_dsn(self) -> str:
        """Superuser DSN of the scenarios' database (accounting reads as it: no RLS)."""
        return self.postgres.dsn(DATABASE)

    @property
    def ingest_dsn(self) -> str:
        """DSN the workers store events with."""
        return self.postgres.dsn(DATABASE, "ops_ingest", ROLE_PASSWORDS["ops_ingest"])

    @property
    def rollup_dsn(self) -> str:
        """DSN the workers write closed windows with."""
        return self.postgres.dsn(DATABASE, "ops_rollup", ROLE_PASSWORDS["ops_rollup"])

    @property
    def alert_dsn(self) -> str:
        """DSN the alert agent reads windows and keeps alert state with."""
        return self.postgres.dsn(DATABASE, "ops_alerter", ROLE_PASSWORDS["ops_alerter"])

    def start(self) -> None:
        """Start fresh servers and migrate the database; stops what it started on failure."""
        ensure_system_tools()
        self.postgres.stop()  # a server of ours left by a crashed run
        busy = [p for p in self.ports.all() if not port_is_free("127.0.0.1", p)]
        if busy:
            raise RuntimeError(f"ports already in use: {busy} (another fault run?)")
        shutil.rmtree(self.logs, ignore_errors=True)  # logs of the previous run
        try:
            self.postgres.start(fresh=True)
            self.postgres.create_database(DATABASE)
            asyncio.run(migrate(self.admin_dsn, role_passwords=ROLE_PASSWORDS))
            self.kafka.start(fresh=True)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop both servers; safe to call twice."""
        try:
            self.kafka.stop()
        finally:
            self.postgres.stop()


@dataclass
class Pipeline:
    """One scenario's topics and consumer group on `bootstrap`, and the processes it started.

    Every process gets the scenario's own topic names, so scenarios never see each other's
    messages; `stop()` stops whatever is still running.
    """

    services: Services
    name: str
    bootstrap: str
    extra_env: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(init=False)
    processes: list[ManagedProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        suffix = f"{self.name}-{uuid.uuid4().hex[:6]}"
        self.env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "OPS_INGEST_DATABASE_URL": self.services.ingest_dsn,
            "OPS_ROLLUP_DATABASE_URL": self.services.rollup_dsn,
            "OPS_TELEMETRY_TOPIC": f"chaos.telemetry.{suffix}",
            "OPS_DEAD_LETTER_TOPIC": f"chaos.telemetry.dlq.{suffix}",
            "OPS_WINDOWS_TOPIC": f"chaos.windows.5m.{suffix}",
            "OPS_WORKER_APP_ID": f"chaos-workers-{suffix}",
            "OPS_API_KEYS": json.dumps({self.services.api_key: ["*"]}),
            **self.services.tuning.as_env(),
            **self.extra_env,
        }

    @property
    def settings(self) -> Settings:
        """The pipeline's settings as the processes read them."""
        return Settings(**self.env)  # type: ignore[arg-type]

    @property
    def group(self) -> str:
        """The workers' consumer group (and Faust app id)."""
        return self.env["OPS_WORKER_APP_ID"]

    @property
    def changelog_topic(self) -> str:
        """The window table's changelog topic, which Faust creates itself."""
        return f"{self.group}-windows-5m-changelog"

    async def create_topics(
        self, min_insync: int | None = None, replication_factor: int | None = None
    ) -> None:
        """Create the gateway's and workers' topics with `replication_factor` replicas
        (default OPS_TOPIC_REPLICATION_FACTOR, as `opsctl` does) and `min_insync` when given;
        Faust creates its changelog itself."""
        configs = {} if min_insync is None else {"min.insync.replicas": str(min_insync)}
        topics = [
            NewTopic(t.name, t.num_partitions, t.replication_factor, topic_configs=configs)
            for t in pipeline_topics(self.settings, replication_factor)
        ]
        await ensure_topics(self.bootstrap, topics)

    def gateway_url(self, port: int) -> str:
        """Base URL of a gateway on `port`."""
        return f"http://127.0.0.1:{port}"

    def start_gateway(self, port: int, *, wait: bool = True) -> ManagedProcess:
        """Start `python -m ingest_gateway` on `port`; wait until /readyz (Kafka reachable)."""
        process = self._spawn(f"gateway-{port}", "ingest_gateway", {"OPS_GATEWAY_PORT": str(port)})
        if wait:
            wait_http_ok(f"{self.gateway_url(port)}/readyz", process, timeout=90)
        return process

    def start_worker(self, port: int, *, wait: bool = True) -> ManagedProcess:
        """Start `python -m stream_workers` serving HTTP on `port`; wait until /readyz."""
        data = self.services.root / "worker-data" / f"{self.group}-{port}"
        process = self._spawn(
            f"worker-{port}",
            "stream_workers",
            {"OPS_WORKER_HTTP_PORT": str(port), "OPS_WORKER_DATA_DIR": str(data)},
        )
        if wait:
            wait_http_ok(f"http://127.0.0.1:{port}/readyz", process, timeout=120)
        return process

    def start_alert_agent(
        self, port: int, extra: dict[str, str], *, wait: bool = True
    ) -> ManagedProcess:
        """Start `python -m alert_agent` on `port` with the pipeline's topics, as role
        ops_alerter, and `extra` (rules, Slack, timings); wait until /readyz (PostgreSQL
        reachable, closed-window listener assigned)."""
        process = self._spawn(
            f"alert-agent-{port}",
            "alert_agent",
            {
                "OPS_ALERT_HOST": "127.0.0.1",
                "OPS_ALERT_PORT": str(port),
                "OPS_ALERT_DATABASE_URL": self.services.alert_dsn,
                "OPS_ALERT_GROUP_ID": f"{self.group}-alerts",
                **extra,
            },
        )
        if wait:
            wait_http_ok(f"http://127.0.0.1:{port}/readyz", process, timeout=90)
        return process

    def stop(self) -> None:
        """Stop every process this pipeline started (newest first); safe to call twice."""
        for process in reversed(self.processes):
            process.stop(timeout=20)

    def _spawn(self, name: str, module: str, extra: dict[str, str]) -> ManagedProcess:
        log = self.services.logs / self.name / f"{name}.log"
        process = ManagedProcess(
            f"{self.name}/{name}",
            [sys.executable, "-m", module],
            log_path=log,
            env={**os.environ, **self.env, **extra},
            cwd=ROOT,
        ).start()
        self.processes.append(process)
        return process
