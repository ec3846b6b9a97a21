"""Real Kafka and PostgreSQL for the tests: local processes (default, CI) or testcontainers.

OPS_TEST_SERVICES=local (default) runs the project's devstack processes;
OPS_TEST_SERVICES=containers starts Docker containers through testcontainers. Nothing is ever
skipped: if the chosen way cannot start, the session fails and says why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from devstack.kafka import KafkaServer
from devstack.postgres import PostgresServer
from devstack.stack import cache_dir
from devstack.system import ensure_system_tools

ROOT = Path(__file__).resolve().parents[2]
TEST_STACK = ROOT / ".stack" / "test"
#: Ports of the test services: away from `make up`'s so both can run at once.
PG_PORT = 25432
KAFKA_PORT = 29092


class Broker(Protocol):
    """A Kafka broker the tests can stop and start again (same address, same data)."""

    bootstrap_servers: str

    def stop(self) -> None: ...

    def start(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class LocalBroker:
    """A devstack KafkaServer."""

    server: KafkaServer
    bootstrap_servers: str = field(init=False)

    def __post_init__(self) -> None:
        self.bootstrap_servers = self.server.bootstrap_servers

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()

    def close(self) -> None:
        self.server.stop()


@dataclass
class ContainerBroker:
    """A testcontainers Kafka; 'stopped' means paused, which keeps its mapped port."""

    container: Any
    bootstrap_servers: str = field(init=False)

    def __post_init__(self) -> None:
        self.bootstrap_servers = self.container.get_bootstrap_server()

    def stop(self) -> None:
        self.container.get_wrapped_container().pause()

    def start(self) -> None:
        self.container.get_wrapped_container().unpause()

    def close(self) -> None:
        self.container.stop()


@dataclass
class Database:
    """A PostgreSQL server reachable with an administrative DSN builder."""

    host: str
    port: int
    superuser: str
    password: str
    close: Any

    def dsn(self, database: str, user: str | None = None, password: str | None = None) -> str:
        """libpq URL for `database` as `user` (the superuser by default)."""
        user = user or self.superuser
        password = password if user != self.superuser else self.password
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"


def mode() -> str:
    """How the session gets its services: 'local' or 'containers'."""
    value = os.environ.get("OPS_TEST_SERVICES", "local")
    if value not in ("local", "containers"):
        raise RuntimeError(f"OPS_TEST_SERVICES must be 'local' or 'containers', not {value!r}")
    return value


def start_database() -> Database:
    """Start the session's PostgreSQL."""
    if mode() == "containers":
        _require_docker()
        from testcontainers.postgres import PostgresContainer

        container = PostgresContainer("postgres:15", username="postgres", password="postgres")
        container.start()
        return Database(
            container.get_container_host_ip(),
            int(container.get_exposed_port(5432)),
            "postgres",
            "postgres",
            container.stop,
        )
    ensure_system_tools()
    server = PostgresServer(TEST_STACK / "pg", PG_PORT)
    server.start(fresh=True)
    return Database(server.host, server.port, "postgres", "postgres", server.stop)


def start_broker(name: str = "kafka", port: int = KAFKA_PORT) -> Broker:
    """Start a fresh broker; `name` and `port` keep several apart."""
    if mode() == "containers":
        _require_docker()
        from testcontainers.kafka import KafkaContainer

        container = KafkaContainer().with_kraft()
        container.start()
        return ContainerBroker(container)
    ensure_system_tools()
    server = KafkaServer(TEST_STACK / name, port, port + 1, cache_dir=cache_dir())
    server.start(fresh=True)
    return LocalBroker(server)


def _require_docker() -> None:
    docker = shutil.which("docker")
    ok = (
        docker is not None
        and subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0
    )
    if not ok:
        raise RuntimeError(
            "OPS_TEST_SERVICES=containers needs a running Docker engine; none answers here. "
            "Unset OPS_TEST_SERVICES to use local Kafka and PostgreSQL processes."
        )
