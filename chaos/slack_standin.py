"""A local HTTP server standing in for Slack (an incoming webhook and chat.postMessage): real
HTTP, so the real slack-sdk clients (in the test process, or in a `python -m alert_agent`
process) talk to it. It records each message it accepts, and every attempt with its answer,
and answers from a script of statuses or, during an outage, with one status throughout.

The one copy, used by the fault suite (`chaos/scenarios/slack_outage.py`) and the tests
(`tests/support/slack_standin.py` re-exports it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

WEBHOOK_PATH = "/services/T000/B000/XXXX"
API_PATH = "/api/"
BOT_TOKEN = "xoxb-test-token"


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request to the webhook: when it arrived (time.monotonic()), the status answered and
    the message it carried."""

    at: float
    status: int
    text: str


@dataclass
class SlackStandIn:
    """Accepted messages (with arrival times), every attempt, and the answers still to give."""

    url: str = ""  #: the incoming-webhook URL
    api_url: str = ""  #: the Web API base URL (chat.postMessage)
    received: list[str] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    attempts: int = 0
    #: Every webhook request in arrival order, refused or accepted.
    log: list[Attempt] = field(default_factory=list)
    #: (status, headers) answered before any 200; empty means accept everything.
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    #: When set, every request is answered with this status (an outage).
    outage_status: int | None = None

    async def handle(self, request: web.Request) -> web.Response:
        """The incoming webhook: 200 "ok" and the message recorded, unless an outage or the
        script says otherwise."""
        payload = await request.json()
        text = str(payload.get("text", ""))
        self.attempts += 1
        now = time.monotonic()
        if self.outage_status is not None:
            self.log.append(Attempt(now, self.outage_status, text))
            return web.Response(status=self.outage_status, text="service_unavailable")
        if self.script:
            status, headers = self.script.pop(0)
            self.log.append(Attempt(now, status, text))
            return web.Response(status=status, headers=headers, text="rate_limited")
        self.log.append(Attempt(now, 200, text))
        self.received.append(text)
        self.received_at.append(now)
        return web.Response(text="ok")

    async def post_message(self, request: web.Request) -> web.Response:
        """chat.postMessage: a bot token and a channel are required, as on Slack."""
        if request.headers.get("Authorization") != f"Bearer {BOT_TOKEN}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        payload = await request.json()
        self.attempts += 1
        if not payload.get("channel"):
            return web.json_response({"ok": False, "error": "channel_not_found"})
        self.received.append(f"{payload['channel']} {payload['text']}")
        self.received_at.append(time.monotonic())
        return web.json_response({"ok": True, "channel": payload["channel"], "ts": "1.0"})

    def attempts_between(self, since: float, until: float | None = None) -> list[Attempt]:
        """The webhook requests that arrived in [since, until]."""
        hi = until if until is not None else float("inf")
        return [a for a in self.log if since <= a.at <= hi]

    async def wait_for(self, count: int, timeout: float = 20) -> list[str]:
        """The accepted messages once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"Slack stand-in got {self.received}, expected {count}")
            await asyncio.sleep(0.05)
        return list(self.received)


@asynccontextmanager
async def slack_standin(port: int = 0, host: str = "127.0.0.1") -> AsyncIterator[SlackStandIn]:
    """Serve a stand-in for Slack on `host`:`port` (0: a free port) until the block ends."""
    standin = SlackStandIn()
    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, standin.handle)
    app.router.add_post(f"{API_PATH}chat.postMessage", standin.post_message)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]  # the port the OS chose when `port` is 0
        standin.url = f"http://{host}:{bound}{WEBHOOK_PATH}"
        standin.api_url = f"http://{host}:{bound}{API_PATH}"
        yield standin
    finally:
        await runner.cleanup()
