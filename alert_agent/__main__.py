"""Run the alert agent: `python -m alert_agent`."""

from __future__ import annotations

import logging
import sys

import uvloop
from aiohttp import web

from ops_common.logging import configure_logging
from ops_common.settings import ApiKeysInvalid, Settings

from .app import create_app
from .rules import RuleFileError
from .slack import SlackNotConfigured


def main() -> int:
    """Serve until SIGTERM/SIGINT; a bad rules file or Slack setting stops start-up with why."""
    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    try:
        app = create_app(settings)
    except (RuleFileError, SlackNotConfigured, ApiKeysInvalid) as exc:
        logging.getLogger("alert_agent").error("[ops-alert] cannot start: %s", exc)
        return 2
    web.run_app(
        app,
        host=settings.alert_host,
        port=settings.alert_port,
        access_log=None,
        print=None,
        loop=uvloop.new_event_loop(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
