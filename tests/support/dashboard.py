"""Dashboard test support: the app served in-process (windows are seeded by
`devstack.demo_windows`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from aiohttp.test_utils import TestClient, TestServer

from ops_common.settings import Settings
from ops_dashboard.app import create_app

TOKEN = "dashboard-test-token"


@asynccontextmanager
async def serve_dashboard(settings: Settings) -> AsyncIterator[TestClient]:
    """The dashboard app on a real local socket."""
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client
