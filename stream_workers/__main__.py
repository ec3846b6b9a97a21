"""Run one worker: `python -m stream_workers`."""

from __future__ import annotations

import asyncio

import faust
import uvloop

from ops_common.logging import configure_logging
from ops_common.settings import Settings

from .app import create_worker


def main() -> None:
    """Run until SIGTERM/SIGINT; Faust then commits the offsets of stored batches."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
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
