"""Run one worker: `python -m stream_workers`."""

from __future__ import annotations

import asyncio

import faust
import uvloop

from ops_common.kafka_client import add_metadata_backoff_to_every_client
from ops_common.logging import configure_logging
from ops_common.settings import Settings

from .app import create_worker


def main() -> None:
    """Run until SIGTERM/SIGINT; Faust then commits the offsets of stored batches."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    # Faust's own Kafka clients too: while no broker answers they would otherwise refresh
    # metadata in a tight loop (a core busy, ~330k ERROR lines in 30 s; aio-libs/aiokafka#496).
    add_metadata_backoff_to_every_client()
    # uvloop: the persist path is dominated by per-message event-loop work.
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = create_worker(settings)
    faust.Worker(
        worker.app,
        *worker.services,
        loop=loop,
        loglevel=settings.log_level,
        override_logging=False,
    ).execute_from_commandline()


if __name__ == "__main__":
    main()
