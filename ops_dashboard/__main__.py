"""Run the dashboard: `python -m ops_dashboard`."""

from __future__ import annotations

import logging
import sys

import uvloop
from aiohttp import web

from ops_common.logging import configure_logging
from ops_common.settings import Settings

from .app import DashboardNotConfigured, create_app


def main() -> int:
    """Serve /ops until SIGTERM/SIGINT."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        app = create_app(settings)
    except DashboardNotConfigured as exc:
        logging.getLogger("ops_dashboard").error("cannot start: %s", exc)
        return 2
    web.run_app(
        app,
        host=settings.dashboard_host,
        port=settings.dashboard_port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
