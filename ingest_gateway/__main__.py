"""Run the gateway: `python -m ingest_gateway`."""

from __future__ import annotations

import logging
import sys

import uvloop
from aiohttp import web

from ops_common.logging import configure_logging
from ops_common.settings import ApiKeysInvalid, Settings

from .app import create_app


def main() -> int:
    """Serve the gateway until SIGTERM/SIGINT; aiohttp drains in-flight requests first."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        app = create_app(settings)
    except ApiKeysInvalid as exc:
        logging.getLogger("ingest_gateway").error("cannot start: %s", exc)
        return 2
    web.run_app(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        shutdown_timeout=settings.produce_timeout_s + 5,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
