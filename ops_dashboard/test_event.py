"""The page's "send test event" button: the dashboard posts one event through the gateway with
its own API key, so the browser never holds a key."""

from __future__ import annotations

import random
from typing import Any

import aiohttp

from ops_common.http.errors import ApiError

TEST_APP = "ops-dashboard"


class GatewayRefused(ApiError):
    """The gateway did not accept the test event."""

    status, code = 502, "gateway_refused"


async def send_test_event(
    session: aiohttp.ClientSession, gateway_url: str, api_key: str, env: str | None
) -> dict[str, Any]:
    """POST one `ops-dashboard/<env>/test-event` event; return the gateway's 201 body."""
    event = {
        "app": TEST_APP,
        "env": env or "dev",
        "event": "test-event",
        "ok": True,
        "latency_ms": random.randint(20, 200),
    }
    try:
        async with session.post(
            f"{gateway_url.rstrip('/')}/telemetry",
            json=event,
            headers={"X-API-Key": api_key},
            timeout=aiohttp.ClientTimeout(total=10),
        ) as response:
            body = await response.json(content_type=None)
            if response.status != 201:
                raise GatewayRefused(f"the gateway answered {response.status}", details=[body])
            return {"event": event, **body}
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise GatewayRefused(f"the gateway is not reachable: {type(exc).__name__}") from None
