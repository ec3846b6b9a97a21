"""The Slack stand-in of the tests: the fault suite's own (`chaos/slack_standin.py`), so one
copy serves both (a real HTTP server the real slack-sdk clients talk to)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `chaos` is run from the checkout (python -m chaos), not installed
    sys.path.insert(0, str(ROOT))

from chaos.slack_standin import (  # noqa: E402
    API_PATH,
    BOT_TOKEN,
    WEBHOOK_PATH,
    Attempt,
    SlackStandIn,
    slack_standin,
)

__all__ = ["API_PATH", "BOT_TOKEN", "WEBHOOK_PATH", "Attempt", "SlackStandIn", "slack_standin"]
