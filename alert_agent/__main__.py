"""Run the alert agent: `python -m alert_agent`."""

from __future__ import annotations

import sys

from ops_common.http.serve import serve
from ops_common.settings import ApiKeysInvalid

from .app import create_app
from .rules import RuleFileError
from .slack import SlackNotConfigured


def main() -> int:
    """Serve until SIGTERM/SIGINT; a bad rules file or Slack setting stops start-up with why."""
    return serve(
        "alert_agent",
        create_app,
        lambda s: s.alert_host,
        lambda s: s.alert_port,
        config_errors=(RuleFileError, SlackNotConfigured, ApiKeysInvalid),
    )


if __name__ == "__main__":
    sys.exit(main())
