"""A local HTTP server standing in for Slack (an incoming webhook and chat.postMessage): real
HTTP, so the real slack-sdk clients talk to it. It records each message it accepts and answers
from a script of statuses."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from aiohttp.test_utils import TestServer

WEBHOOK_PATH = "/services/T000/B000/XXXX"
API_PATH = "/api/"
BOT_TOKEN = "xoxb-test-token"


@dataclass
class SlackStandIn:
    """Accepted messages (with arrival times) and the answers still to give."""

    url: str = ""  #: the incoming-webhook URL
    api_url: str = ""  #: the Web API base URL (chat.postMessage)
    received: list[str] = field(default_factory=list)
    received_at: list[float] = field(default_factory=list)
    attempts: int = 0
    #: (status, headers) answered before any 200; empty means accept everything.
    script: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    #: When set, every request is answered with this status (an outage).
    outage_status: int | None = None

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.json()
        self.attempts += 1
        if self.outage_status is not None:
            return web.Response(status=self.outage_status, text="service_unavailable")
        if self.script:
            status, headers = self.script.pop(0)
            return web.Response(status=status, headers=headers, text="rate_limited")
        self.received.append(payload["text"])
        self.received_at.append(time.monotonic())
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

    async def wait_for(self, count: int, timeout: float = 20) -> list[str]:
        """The accepted messages once there are `count` of them."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"Slack stand-in got {self.received}, expected {count}")
            await asyncio.sleep(0.05)
        return list(self.received)


@asynccontextmanager
async def slack_standin() -> AsyncIterator[SlackStandIn]:
    """Serve a stand-in for Slack's incoming-webhook endpoint on a free local port."""
    standin = SlackStandIn()
    app = web.Application()
    app.router.add_post(WEBHOOK_PATH, standin.handle)
    app.router.add_post(f"{API_PATH}chat.postMessage", standin.post_message)
    server = TestServer(app)
    await server.start_server()
    standin.url = str(server.make_url(WEBHOOK_PATH))
    standin.api_url = str(server.make_url(API_PATH))
    try:
        yield standin
    finally:
        await server.close()
