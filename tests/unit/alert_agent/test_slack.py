"""Unit tests for alert_agent.slack: which notifier the settings arm."""

from __future__ import annotations

import pytest

from alert_agent.slack import (
    BotNotifier,
    SlackNotConfigured,
    WebhookNotifier,
    notifier_from_settings,
)
from ops_common.settings import Settings


def test_dry_run_has_no_notifier_even_when_slack_is_configured() -> None:
    settings = Settings(OPS_SLACK_WEBHOOK_URL="https://hooks.slack.com/services/x")
    assert notifier_from_settings(settings) is None


def test_armed_with_a_webhook() -> None:
    settings = Settings(
        OPS_ALERT_DRY_RUN=False, OPS_SLACK_WEBHOOK_URL="https://hooks.slack.com/services/x"
    )
    assert isinstance(notifier_from_settings(settings), WebhookNotifier)


def test_armed_with_a_bot_token_and_channel() -> None:
    settings = Settings(
        OPS_ALERT_DRY_RUN=False, OPS_SLACK_BOT_TOKEN="xoxb-1", OPS_SLACK_CHANNEL="#a"
    )
    assert isinstance(notifier_from_settings(settings), BotNotifier)


@pytest.mark.parametrize(
    "slack",
    [{}, {"OPS_SLACK_BOT_TOKEN": "xoxb-1"}, {"OPS_SLACK_CHANNEL": "#a"}],
    ids=["nothing", "token without channel", "channel without token"],
)
def test_armed_without_a_destination_refuses_to_start(slack: dict[str, str]) -> None:
    with pytest.raises(SlackNotConfigured, match="OPS_SLACK_WEBHOOK_URL, or OPS_SLACK_BOT_TOKEN"):
        notifier_from_settings(Settings(OPS_ALERT_DRY_RUN=False, **slack))
