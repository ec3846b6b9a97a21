"""Creating the pipeline's Kafka topics with their partition counts."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from ops_common.settings import Settings

log = logging.getLogger(__name__)


def pipeline_topics(settings: Settings, replication_factor: int | None = None) -> list[NewTopic]:
    """The topics the gateway and workers need (Faust creates its own internal ones, with the
    same OPS_TOPIC_REPLICATION_FACTOR)."""
    replication_factor = replication_factor or settings.topic_replication_factor
    return [
        NewTopic(settings.telemetry_topic, settings.telemetry_partitions, replication_factor),
        NewTopic(settings.dead_letter_topic, 1, replication_factor),
        NewTopic(settings.windows_topic, settings.telemetry_partitions, replication_factor),
    ]


async def ensure_topics(
    bootstrap_servers: str, topics: list[NewTopic], timeout: float = 60
) -> None:
    """Create each topic unless it exists, retrying while the broker is still starting."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t.name not in existing]
            if missing:
                await admin.create_topics(missing)
            return
        except TopicAlreadyExistsError:
            return
        except (KafkaError, OSError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise
            log.info("creating topics: broker not ready (%r), retrying", exc)
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
