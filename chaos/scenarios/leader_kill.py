"""Partition leader killed: SIGKILL of the node leading the most telemetry partitions of a
three-node cluster (min.insync.replicas 2), started again later; with a three-replica changelog
the worker keeps storing, and the control with a one-replica changelog shows why production
needs three."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from contextlib import suppress
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from devstack.stack import cache_dir

from ..kafka_cluster import (
    MIN_INSYNC_REPLICAS,
    REPLICATION_FACTOR,
    KafkaCluster,
    describe_partitions,
)
from ..load import LoadSpec
from .common import (
    Check,
    Environment,
    ScenarioResult,
    cancel,
    new_app,
    scenario_run,
    settle,
    sleep_until,
    stored_for_app,
    worker_counters,
)


async def leader_kill(
    env: Environment,
    *,
    events: int = 50_000,
    rate: float = 1000.0,
    kill_after_s: float = 10.0,
    down_s: float = 30.0,
    topic_replication_factor: int = REPLICATION_FACTOR,
) -> ScenarioResult:
    """SIGKILL the node leading most telemetry partitions of a 3-node cluster (brokers with
    min.insync.replicas 2) `kill_after_s` into the load; start it again `down_s` later.

    The pipeline's topics are created with 3 replicas and min.insync.replicas 2; the processes
    run with OPS_TOPIC_REPLICATION_FACTOR=`topic_replication_factor` (3 as in
    deploy/k8s/base), with which Faust creates the window table's changelog. With 1 (the
    setting's default, the dev overlay) the scenario is the control that shows why
    production needs 3."""
    began = time.monotonic()
    control = topic_replication_factor < 2
    key = "leader-kill-changelog-rf1" if control else "leader-kill"
    index = 8 if control else 2
    cluster = KafkaCluster(
        env.services.root / "cluster", env.ports.cluster_base, cache_dir(), env.services.logs / key
    )
    await asyncio.to_thread(cluster.start)
    try:
        async with scenario_run(
            env,
            key,
            index,
            began=began,
            bootstrap=cluster.bootstrap_servers,
            min_insync=MIN_INSYNC_REPLICAS,
            replication_factor=REPLICATION_FACTOR,
            extra_env={"OPS_TOPIC_REPLICATION_FACTOR": str(topic_replication_factor)},
        ) as run:
            timeline, pipeline = run.timeline, run.pipeline
            bootstrap = cluster.bootstrap_servers
            topic = pipeline.settings.telemetry_topic
            before = await describe_partitions(bootstrap, topic)
            changelog = await describe_partitions(bootstrap, pipeline.changelog_topic)
            offsets_topic = await describe_partitions(bootstrap, "__consumer_offsets")
            topic_isr = await _topic_config(bootstrap, topic, "min.insync.replicas")
            changelog_isr = await _topic_config(
                bootstrap, pipeline.changelog_topic, "min.insync.replicas"
            )
            spec = LoadSpec(new_app("leader"), events, rate, seed=3)
            record, load = await run.start_load(spec)
            conn = await asyncpg.connect(env.services.admin_dsn)
            victim = 0
            try:
                await sleep_until(record.started + kill_after_s)
                leaders = Counter(p.leader for p in before)
                victim = leaders.most_common(1)[0][0]
                stored_at_kill = await stored_for_app(conn, spec.app)
                killed = timeline.mark(f"SIGKILL node {victim} (leader of {leaders[victim]} of 6)")
                await asyncio.to_thread(cluster.kill_node, victim)
                failover = await _wait_leaders_moved(bootstrap, topic, victim)
                moved = timeline.mark("no telemetry partition led by the killed node")
                stored_at_failover = await stored_for_app(conn, spec.app)
                after = await describe_partitions(bootstrap, topic)
                await sleep_until(killed + down_s)
                stored_before_restart = await stored_for_app(conn, spec.app)
                restart = timeline.mark(f"node {victim} starting again")
                await asyncio.to_thread(cluster.start_node, victim)
                timeline.mark(f"node {victim} listening")
                await load
                timeline.at(record.finished, "last answer of the load")
            finally:
                await cancel(load)
                await conn.close()
            counts, timings = await settle(env, record)
            counters = await worker_counters([run.worker_port])
            changelog_after = await describe_partitions(bootstrap, pipeline.changelog_topic)
    finally:
        await asyncio.to_thread(cluster.stop)
    changelog_rf = sorted({len(p.replicas) for p in changelog}) or [0]
    result = run.result(
        "Partition leader killed (3 nodes, min.insync.replicas 2, "
        f"OPS_TOPIC_REPLICATION_FACTOR={topic_replication_factor})"
        + (": control with a one-replica changelog" if control else ""),
        f"SIGKILL of the node leading the most telemetry partitions {kill_after_s:.0f} s into "
        f"the load, started again {down_s:.0f} s later; the pipeline's topics created with 3 "
        "replicas and min.insync.replicas 2, the workers run with "
        f"OPS_TOPIC_REPLICATION_FACTOR={topic_replication_factor}, which Faust creates the "
        "window changelog with",
        record,
        counts,
    )
    while_down = record.statuses(killed, restart, answered_in_span=True)
    first_201 = record.first_ack_after(killed)
    on_victim = [p.partition for p in changelog if victim in p.replicas]
    acked_down = record.acked_between(moved, restart)
    stored_down = stored_before_restart - stored_at_failover
    kept_storing = acked_down == 0 or stored_down >= 0.5 * acked_down
    before_rate = stored_at_kill / max(killed - record.started, 1e-9)
    result.timings |= timings | {
        "kill to new leaders elected, s": round(failover, 1) if failover >= 0 else -1.0,
        "kill to first 201 of a request sent after it, s": (
            round(first_201 - killed, 1) if first_201 is not None else -1.0
        ),
        "new leaders to node restart, s": round(restart - moved, 1),
    }
    result.facts = {
        "telemetry topic replication factor": sorted({len(p.replicas) for p in before}),
        "telemetry topic min.insync.replicas": topic_isr,
        "__consumer_offsets replication factor": sorted({len(p.replicas) for p in offsets_topic}),
        "Faust changelog topic replication factor": changelog_rf,
        "Faust changelog min.insync.replicas": changelog_isr,
        "changelog partitions with a replica on the killed node": on_victim,
        "leaders before (partition: node)": {p.partition: p.leader for p in before},
        "leaders after failover": {p.partition: p.leader for p in after},
        "ISR after failover": {p.partition: list(p.isr) for p in after},
        "changelog ISR after the run": {p.partition: list(p.isr) for p in changelog_after},
        "answers while the node was down": dict(while_down),
        "stored per s before the kill": round(before_rate, 1),
        "acknowledged / stored between failover and node restart": [acked_down, stored_down],
        "worker counters": counters,
    }
    storing = (
        f"{stored_down} rows stored while {acked_down} events were acknowledged in the "
        f"{restart - moved:.0f} s between failover and the node's restart; changelog "
        f"replication factor {changelog_rf}, partitions with a replica on the killed node "
        f"{on_victim}"
    )
    result.checks += [
        Check(
            "the cluster elects new leaders for every telemetry partition",
            failover >= 0,
            f"{failover:.1f} s after the kill" if failover >= 0 else "not within 60 s",
        ),
        Check(
            "ingestion continues with one node down (201s before the node is back)",
            while_down.get("201", 0) > 0,
            f"answers while the node was down: {dict(while_down)}",
        ),
    ]
    if control:
        result.checks.append(
            Check(
                "control: with a one-replica changelog whose broker died, storing stalls until "
                "it is back (why production sets OPS_TOPIC_REPLICATION_FACTOR=3)",
                bool(on_victim) and not kept_storing,
                storing,
            )
        )
    else:
        result.checks += [
            Check(
                f"the Faust changelog is created with {topic_replication_factor} replicas",
                changelog_rf == [topic_replication_factor],
                f"replication factor {changelog_rf}, min.insync.replicas {changelog_isr}",
            ),
            Check(
                "the worker keeps storing with one node down (after failover, before the restart)",
                kept_storing,
                storing,
            ),
        ]
    return result


async def leader_kill_changelog_rf1(env: Environment, **sizes: Any) -> ScenarioResult:
    """The control of `leader_kill`: OPS_TOPIC_REPLICATION_FACTOR=1, so the changelog has one
    replica and storing stalls while its broker is down."""
    return await leader_kill(env, topic_replication_factor=1, **sizes)


async def _wait_leaders_moved(
    bootstrap: str, topic: str, victim: int, timeout: float = 60
) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with suppress(Exception):  # metadata may be unavailable for a moment
            states = await describe_partitions(bootstrap, topic)
            if states and all(s.leader not in (victim, -1) for s in states):
                return time.monotonic() - started
        await asyncio.sleep(0.25)
    return -1.0


async def _topic_config(bootstrap: str, topic: str, name: str) -> str:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    for response in responses:
        for resource in response.to_object()["resources"]:
            for entry in resource["config_entries"]:
                if entry["config_names"] == name:
                    return str(entry["config_value"])
    return "?"
