"""A local three-node Apache Kafka cluster in KRaft mode (every node broker + controller), from
the same Maven Central jars and java invocation as `devstack.kafka.KafkaServer`.

devstack runs one combined node; the leader-failover scenario needs replication factor 3 and
`min.insync.replicas` 2, so a partition keeps a leader and acknowledged writes survive when one
node is killed. The quorum is static (`controller.quorum.voters`), so every node is formatted
alone with the shared cluster id.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient

import devstack.kafka
from devstack.kafka import resolve_kafka_jars
from devstack.processes import ManagedProcess, wait_for_port

_LOG4J = Path(devstack.kafka.__file__).resolve().parent / "kafka" / "log4j2.properties"

#: Replication settings the scenario exercises (and the cluster's defaults for new topics).
REPLICATION_FACTOR = 3
MIN_INSYNC_REPLICAS = 2


@dataclass
class KafkaNode:
    """One broker+controller of the cluster."""

    node_id: int
    port: int
    controller_port: int
    base_dir: Path
    log_path: Path
    process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def running(self) -> bool:
        """True while the node's JVM runs."""
        return self.process is not None and self.process.running

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs."""
        if self.process is None or self.process.process is None or not self.running:
            return None
        return self.process.process.pid


@dataclass
class KafkaCluster:
    """Three (or `size`) KRaft nodes on 127.0.0.1, ports `base_port` + 2·i (client) and
    `base_port` + 2·i + 1 (controller), data under `base_dir`, logs in `logs_dir`."""

    base_dir: Path
    base_port: int
    cache_dir: Path
    logs_dir: Path
    size: int = 3
    heap: str = "384m"
    host: str = "127.0.0.1"
    extra_config: dict[str, str] = field(default_factory=dict)
    nodes: list[KafkaNode] = field(init=False)

    def __post_init__(self) -> None:
        self.nodes = [
            KafkaNode(
                node_id=i + 1,
                port=self.base_port + 2 * i,
                controller_port=self.base_port + 2 * i + 1,
                base_dir=self.base_dir / f"node-{i + 1}",
                log_path=self.logs_dir / f"kafka-node-{i + 1}.log",
            )
            for i in range(self.size)
        ]

    @property
    def bootstrap_servers(self) -> str:
        """Every node's host:port, comma-separated, for clients."""
        return ",".join(f"{self.host}:{n.port}" for n in self.nodes)

    def node(self, node_id: int) -> KafkaNode:
        """The node with `node_id` (1-based)."""
        return self.nodes[node_id - 1]

    def start(self, *, fresh: bool = True) -> None:
        """Format every node (anew when `fresh`) and start them all; return once each listens."""
        lib = resolve_kafka_jars(self.cache_dir)
        cluster_id = _cluster_id()
        if fresh and self.base_dir.exists():
            shutil.rmtree(self.base_dir)
        with ThreadPoolExecutor(self.size) as pool:  # each format is a JVM start: in parallel
            list(pool.map(lambda n: self._format(lib, n, cluster_id), self.nodes))
        try:
            for node in self.nodes:
                self._spawn(lib, node)
            for node in self.nodes:
                self._wait(node)
        except BaseException:
            self.stop()
            raise

    def start_node(self, node_id: int) -> None:
        """Start a stopped node again with its data; return once it listens."""
        node = self.node(node_id)
        if node.running:
            return
        self._spawn(resolve_kafka_jars(self.cache_dir), node)
        self._wait(node)

    def kill_node(self, node_id: int) -> None:
        """SIGKILL one node (no controlled shutdown) and wait until it is gone."""
        node = self.node(node_id)
        if node.process is not None and node.process.process is not None and node.running:
            node.process.signal(signal.SIGKILL)
            node.process.process.wait(30)

    def stop(self) -> None:
        """Stop every node (SIGTERM, then SIGKILL); safe to call twice."""
        for node in self.nodes:
            if node.process is not None:
                node.process.signal(signal.SIGTERM)
        for node in self.nodes:
            if node.process is not None:
                node.process.stop(timeout=30)

    def _format(self, lib: Path, node: KafkaNode, cluster_id: str) -> None:
        config = self._write_config(node)
        if (node.base_dir / "data" / "meta.properties").exists():
            return
        result = subprocess.run(
            [
                *self._java(lib, "kafka.tools.StorageTool"),
                *("format", "-t", cluster_id, "-c", str(config)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"formatting Kafka node {node.node_id} failed: {result.stderr or result.stdout}"
            )

    def _spawn(self, lib: Path, node: KafkaNode) -> None:
        config = node.base_dir / "server.properties"
        node.process = ManagedProcess(
            f"kafka-{node.node_id}",
            [*self._java(lib, "kafka.Kafka"), str(config)],
            log_path=node.log_path,
        ).start()

    def _wait(self, node: KafkaNode) -> None:
        assert node.process is not None
        wait_for_port(
            self.host, node.port, 90, process=node.process.process, log_path=node.log_path
        )

    def _java(self, lib: Path, main: str) -> list[str]:
        return [
            "java",
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            f"-Dlog4j2.configurationFile={_LOG4J}",
            "-cp",
            f"{lib}/*",
            main,
        ]

    def _write_config(self, node: KafkaNode) -> Path:
        node.base_dir.mkdir(parents=True, exist_ok=True)
        voters = ",".join(f"{n.node_id}@{self.host}:{n.controller_port}" for n in self.nodes)
        rf, isr = str(REPLICATION_FACTOR), str(MIN_INSYNC_REPLICAS)
        settings = {
            "process.roles": "broker,controller",
            "node.id": str(node.node_id),
            "controller.quorum.voters": voters,
            "listeners": f"PLAINTEXT://{self.host}:{node.port},"
            f"CONTROLLER://{self.host}:{node.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{node.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(node.base_dir / "data"),
            "num.partitions": "6",
            "default.replication.factor": rf,
            "min.insync.replicas": isr,
            "unclean.leader.election.enable": "false",
            "offsets.topic.replication.factor": rf,
            "offsets.topic.num.partitions": "6",
            "transaction.state.log.replication.factor": rf,
            "transaction.state.log.min.isr": isr,
            "share.coordinator.state.topic.replication.factor": rf,
            "share.coordinator.state.topic.min.isr": isr,
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            **self.extra_config,
        }
        path = node.base_dir / "server.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        return path


def _cluster_id() -> str:
    # Kafka's own format (a base64url UUID); one starting with "-" would read as an option.
    while True:
        candidate = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
        if not candidate.startswith("-"):
            return candidate


@dataclass(frozen=True)
class PartitionState:
    """Leader, replicas and in-sync replicas of one partition (node ids; leader -1: none)."""

    partition: int
    leader: int
    replicas: tuple[int, ...]
    isr: tuple[int, ...]


async def describe_partitions(bootstrap: str, topic: str) -> list[PartitionState]:
    """The partitions of `topic` as the cluster's metadata reports them now."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        topics: Sequence[dict[str, Any]] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    states = []
    for entry in topics:
        for p in entry.get("partitions", []):
            states.append(
                PartitionState(
                    partition=int(p["partition"]),
                    leader=int(p["leader"]),
                    replicas=tuple(int(r) for r in p["replicas"]),
                    isr=tuple(int(r) for r in p["isr"]),
                )
            )
    return sorted(states, key=lambda s: s.partition)
