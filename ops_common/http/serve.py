"""Running an aiohttp service process, the one way the gateway, the alert agent and the
dashboard start: logging configured, the app built (a configuration error stops start-up with
exit code 2 and says why), aiokafka's metadata refresh given a back-off, served on uvloop until
SIGTERM/SIGINT."""

from __future__ import annotations

import logging
from collections.abc import Callable

import uvloop
from aiohttp import web

from ops_common.kafka_client import add_metadata_backoff_to_every_client
from ops_common.logging import configure_logging
from ops_common.settings import Settings


def serve(
    name: str,
    build: Callable[[Settings], web.Application],
    host: Callable[[Settings], str],
    port: Callable[[Settings], int],
    *,
    config_errors: tuple[type[Exception], ...],
    shutdown_timeout: Callable[[Settings], float] = lambda _: 60.0,
) -> int:
    """Serve the app `build` makes until stopped; the process's exit code."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    # Without it aiokafka retries its metadata refresh in a tight loop while no broker is
    # reachable: a core busy, hundreds of thousands of ERROR lines (aio-libs/aiokafka#496).
    add_metadata_backoff_to_every_client()
    try:
        app = build(settings)
    except config_errors as exc:
        logging.getLogger(name).error("cannot start: %s", exc)
        return 2
    web.run_app(
        app,
        host=host(settings),
        port=port(settings),
        shutdown_timeout=shutdown_timeout(settings),
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )
    return 0
