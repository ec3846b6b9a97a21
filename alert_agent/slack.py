"""Sending one message to Slack with slack-sdk's async clients: an incoming webhook, or a bot
token posting with chat.postMessage. 429s are retried after Slack's Retry-After, 5xx and
connection errors with exponential back-off; what still fails raises `SlackSendFailed`."""

from __future__ import annotations

from typing import Protocol

from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from ops_common.settings import Settings

_RETRIES = 3


class SlackSendFailed(Exception):
    """Slack did not accept the message after the client's retries."""


class SlackNotifier(Protocol):
    """Something that delivers one text message to the team's alert channel."""

    async def send(self, text: str) -> None:
        """Deliver `text`, or raise SlackSendFailed."""


class _ServerErrorRetryHandler(AsyncRetryHandler):
    # slack-sdk's own handler retries only 500 and 503; a 502 or 504 from Slack's edge is as
    # transient.
    async def _can_retry_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code >= 500


def retry_handlers() -> list[AsyncRetryHandler]:
    """The retry policy both clients use."""
    backoff = BackoffRetryIntervalCalculator(backoff_factor=0.5)
    return [
        AsyncRateLimitErrorRetryHandler(max_retry_count=_RETRIES),
        _ServerErrorRetryHandler(max_retry_count=_RETRIES, interval_calculator=backoff),
        AsyncConnectionErrorRetryHandler(max_retry_count=_RETRIES, interval_calculator=backoff),
    ]


class WebhookNotifier:
    """Posts to a Slack incoming webhook."""

    def __init__(self, url: str, *, timeout_s: int = 10) -> None:
        self._client = AsyncWebhookClient(url, timeout=timeout_s, retry_handlers=retry_handlers())

    async def send(self, text: str) -> None:
        """Post `text`; Slack answers 200 "ok" when it took it."""
        try:
            response = await self._client.send(text=text)
        except Exception as exc:  # aiohttp's errors after the retries, timeouts
            raise SlackSendFailed(f"webhook unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise SlackSendFailed(f"webhook answered {response.status_code}: {response.body[:200]}")


class BotNotifier:
    """Posts with chat.postMessage as a bot user."""

    def __init__(self, token: str, channel: str, *, base_url: str, timeout_s: int = 10) -> None:
        self._channel = channel
        self._client = AsyncWebClient(
            token=token, base_url=base_url, timeout=timeout_s, retry_handlers=retry_handlers()
        )

    async def send(self, text: str) -> None:
        """Post `text` to the configured channel."""
        try:
            await self._client.chat_postMessage(channel=self._channel, text=text)
        except SlackApiError as exc:
            raise SlackSendFailed(f"chat.postMessage refused: {exc.response.get('error')}") from exc
        except Exception as exc:
            raise SlackSendFailed(f"Slack API unreachable: {exc!r}") from exc


class SlackNotConfigured(ValueError):
    """The agent is armed but has nowhere to send."""


def notifier_from_settings(settings: Settings) -> SlackNotifier | None:
    """The notifier an armed agent uses; None in dry run."""
    if settings.alert_dry_run:
        return None
    if settings.slack_webhook_url is not None:
        return WebhookNotifier(settings.slack_webhook_url.get_secret_value())
    if settings.slack_bot_token is not None and settings.slack_channel:
        return BotNotifier(
            settings.slack_bot_token.get_secret_value(),
            settings.slack_channel,
            base_url=settings.slack_api_url,
        )
    raise SlackNotConfigured(
        "OPS_ALERT_DRY_RUN=false needs OPS_SLACK_WEBHOOK_URL, or OPS_SLACK_BOT_TOKEN with"
        " OPS_SLACK_CHANNEL"
    )
