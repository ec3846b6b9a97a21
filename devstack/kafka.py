"""A local single-node Apache Kafka broker in KRaft mode, from the Maven Central jars."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .processes import ManagedProcess, wait_for_port

#: 4.x because aiokafka >= 0.13 negotiates API versions with it and faust-streaming runs on
#: that aiokafka; 4.1 is the newest line whose broker we run in CI here (see README).
KAFKA_VERSION = "4.1.1"
_RESOURCES = Path(__file__).parent / "kafka"


def resolve_kafka_jars(cache_dir: Path, version: str = KAFKA_VERSION) -> Path:
    """Resolve the broker jars with Maven into `cache_dir` once; return the lib folder."""
    lib = (cache_dir / f"kafka-{version}" / "lib").resolve()
    done = lib / ".resolved"
    if done.exists():
        return lib
    if lib.exists():
        shutil.rmtree(lib)
    subprocess.run(
        [
            "mvn",
            "-q",
            "-B",
            "-f",
            str(_RESOURCES / "pom.xml"),
            f"-Dkafka.version={version}",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib}",
            "-DincludeScope=runtime",
        ],
        check=True,
    )
    done.touch()
    return lib


@dataclass
class KafkaServer:
    """One combined broker+controller on 127.0.0.1:`port` with its log dirs under `base_dir`."""

    base_dir: Path
    port: int
    controller_port: int
    cache_dir: Path
    heap: str = "512m"
    logs_dir: Path | None = None  #: where kafka.log goes (default: base_dir)
    host: str = "127.0.0.1"
    extra_config: dict[str, str] = field(default_factory=dict)
    _process: ManagedProcess | None = field(default=None, init=False, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        """host:port for clients."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        """Where the broker's output goes."""
        return (self.logs_dir or self.base_dir) / "kafka.log"

    def start(self, *, fresh: bool = False) -> None:
        """Format storage if needed (or anew when `fresh`) and start the broker."""
        lib = resolve_kafka_jars(self.cache_dir)
        data = self.base_dir / "data"
        if fresh and data.exists():
            shutil.rmtree(data)
        config = self._write_config(data)
        if not (data / "meta.properties").exists():
            subprocess.run(
                [
                    *self._java(lib, "kafka.tools.StorageTool"),
                    "format",
                    "--standalone",
                    "-t",
                    str(uuid.uuid4()),
                    "-c",
                    str(config),
                ],
                check=True,
                capture_output=True,
            )
        self._process = ManagedProcess(
            "kafka", [*self._java(lib, "kafka.Kafka"), str(config)], log_path=self.log_path
        ).start()
        wait_for_port(
            self.host, self.port, 60, process=self._process.process, log_path=self.log_path
        )

    def stop(self) -> None:
        """Stop the broker cleanly; safe to call twice."""
        if self._process is not None:
            self._process.stop(timeout=30)

    def _java(self, lib: Path, main: str) -> list[str]:
        return [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={_RESOURCES / 'log4j2.properties'}",
            "-cp",
            f"{lib}/*",
            main,
        ]

    def _write_config(self, data: Path) -> Path:
        self.base_dir.mkdir(parents=True, exist_ok=True)
        settings = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{self.host}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},"
            f"CONTROLLER://{self.host}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(data),
            "num.partitions": "6",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            **self.extra_config,
        }
        path = self.base_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        return path
