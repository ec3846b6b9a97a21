"""The /ops page in headless Chromium (Debian's, driven by Playwright) against the dashboard on
real PostgreSQL with seeded windows, a real gateway and a real worker: filters, synced charts
on an Asia/Tokyo axis, auto and manual refresh, empty and error states, the test-event button."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient
from playwright.async_api import Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout
from support.dashboard import TOKEN, serve_dashboard
from support.helpers import KEY_ALL

from devstack.browser import launch
from devstack.demo_windows import Seeded, seed_windows
from devstack.processes import ManagedProcess
from ops_common.settings import Settings

TOKYO = ZoneInfo("Asia/Tokyo")


@pytest.fixture(scope="module")
def seeded(admin_dsn: str) -> Seeded:
    """A day of windows for 3 apps x 2 events under an env of this module's own."""
    return asyncio.run(
        seed_windows(admin_dsn, f"ui-{uuid.uuid4().hex[:8]}", apps=3, events=2, days=1)
    )


@pytest.fixture
async def dashboard(
    reader_dsn: str, gateway: TestClient, worker: ManagedProcess
) -> AsyncIterator[str]:
    """The dashboard's base URL; its test events go through the real gateway to the worker."""
    settings = Settings(
        OPS_READER_DATABASE_URL=reader_dsn,
        OPS_DASHBOARD_TOKEN=TOKEN,
        OPS_DASHBOARD_REFRESH_S=1,
        OPS_DASHBOARD_API_KEY=KEY_ALL,
        OPS_DASHBOARD_GATEWAY_URL=str(gateway.make_url("/")).rstrip("/"),
    )
    async with serve_dashboard(settings) as client:
        yield str(client.make_url("/")).rstrip("/")


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    """A page in a browser whose own time zone is New York, so Tokyo labels prove themselves."""
    async with async_playwright() as playwright:
        browser = await launch(playwright)
        context = await browser.new_context(
            timezone_id="America/New_York", viewport={"width": 1280, "height": 900}
        )
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            yield page
        finally:
            await browser.close()
        assert errors == [], f"JavaScript errors on the page: {errors}"


async def open_ops(page: Page, base: str, query: str, state: str = "ready") -> None:
    """Sign in with the token and wait until the page settled in `state`."""
    await page.goto(f"{base}/ops?token={TOKEN}&{query}")
    await wait_state(page, state)


async def wait_state(page: Page, state: str) -> None:
    try:
        await page.wait_for_function(
            "state => document.body.dataset.state === state", arg=state, timeout=15_000
        )
    except PlaywrightTimeout:
        seen = await page.evaluate(
            "[document.body.dataset.state, document.getElementById('status-text').textContent]"
        )
        pytest.fail(f"the page stayed {seen[0]!r} ({seen[1]}), expected {state!r}")


async def loads(page: Page) -> int:
    return int(await page.get_attribute("body", "data-loads") or 0)


async def wait_loads_above(page: Page, count: int) -> None:
    await page.wait_for_function(
        "n => Number(document.body.dataset.loads) > n", arg=count, timeout=15_000
    )


async def chart_option(page: Page, chart_id: str) -> Any:
    return await page.evaluate(
        """id => {
            const o = echarts.getInstanceByDom(document.getElementById(id)).getOption();
            return {points: o.series.map(s => s.data.length), names: o.series.map(s => s.name),
                    zoom: o.dataZoom.map(z => [z.start, z.end])};
        }""",
        chart_id,
    )


def tokyo(moment: datetime) -> str:
    return moment.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M:%S")


async def test_filters_change_cards_charts_and_the_url(
    page: Page, dashboard: str, seeded: Seeded
) -> None:
    await open_ops(page, dashboard, f"env={seeded.env}&period=6h")
    assert "token" not in page.url
    i = len(seeded.buckets) - 1
    assert await page.text_content("[data-testid=kpi-total]") == str(6 * seeded.total(i))
    all_apps = await chart_option(page, "chart-p95")
    assert all_apps["names"] == ["p95 latency (ms)"]
    assert all_apps["points"][0] >= 70  # 6 h of 5-minute windows

    before = await loads(page)
    await page.select_option("[data-testid=filter-app]", "app1")
    await wait_loads_above(page, before)
    await wait_state(page, "ready")
    assert await page.text_content("[data-testid=kpi-total]") == str(2 * seeded.total(i))
    assert await page.text_content("[data-testid=kpi-p95]") == f"{round(seeded.p95(i, 1))} ms"
    assert "app=app1" in page.url
    outcomes = await chart_option(page, "chart-outcomes")
    assert outcomes["names"] == ["success", "failure"]

    before = await loads(page)
    await page.select_option("[data-testid=filter-period]", "1h")
    await wait_loads_above(page, before)
    one_hour = await chart_option(page, "chart-p95")
    assert 10 <= one_hour["points"][0] <= 12
    assert "period" not in page.url  # 1 h is the default

    shared = page.url  # the filter state travels with the link
    await page.goto(shared)
    await wait_state(page, "ready")
    assert await page.input_value("[data-testid=filter-app]") == "app1"
    assert await page.text_content("[data-testid=kpi-total]") == str(2 * seeded.total(i))


async def test_charts_share_one_tokyo_axis_and_zoom_together(
    page: Page, dashboard: str, seeded: Seeded
) -> None:
    await open_ops(page, dashboard, f"env={seeded.env}&period=24h")
    newest = seeded.buckets[-1]
    assert await page.text_content("[data-testid=kpi-window]") == f"window {tokyo(newest)} JST"
    label = await page.evaluate(
        """t => echarts.getInstanceByDom(document.getElementById('chart-p95'))
                 .getOption().xAxis[0].axisLabel.formatter(t)""",
        int(newest.timestamp() * 1000),
    )
    assert label.endswith(newest.astimezone(TOKYO).strftime("%H:%M"))
    await page.evaluate(
        """() => echarts.getInstanceByDom(document.getElementById('chart-p95'))
                  .dispatchAction({type: 'dataZoom', start: 40, end: 90})"""
    )
    p95, outcomes = (
        await chart_option(page, "chart-p95"),
        await chart_option(page, "chart-outcomes"),
    )
    assert p95["zoom"][0] == [40, 90]
    assert outcomes["zoom"][0] == [40, 90]


async def test_auto_refresh_fires_and_its_toggle_stops_it(
    page: Page, dashboard: str, seeded: Seeded
) -> None:
    await open_ops(page, dashboard, f"env={seeded.env}")
    assert await page.text_content("#refresh-seconds") == "1"
    start = await loads(page)
    await wait_loads_above(page, start + 1)  # two refreshes with nobody touching the page
    assert "updated" in (await page.text_content("[data-testid=last-updated]") or "")

    await page.uncheck("[data-testid=auto-refresh]")
    assert "auto=off" in page.url
    stopped = await loads(page)
    await page.wait_for_timeout(2500)
    assert await loads(page) <= stopped + 1  # at most the one already under way


async def test_manual_refresh(page: Page, dashboard: str, seeded: Seeded) -> None:
    await open_ops(page, dashboard, f"env={seeded.env}&auto=off")
    before = await loads(page)
    await page.click("[data-testid=refresh]")
    await wait_loads_above(page, before)
    await wait_state(page, "ready")


async def test_empty_state_says_what_to_do(page: Page, dashboard: str) -> None:
    await open_ops(page, dashboard, "app=nothing-here&auto=off", state="empty")
    text = await page.text_content("[data-testid=status-text]") or ""
    assert "No telemetry for these filters" in text
    assert "Send test event" in text
    assert not await page.is_visible("[data-testid=chart-p95]")
    assert not await page.is_visible("[data-testid=retry]")


async def test_error_state_and_retry_recovering(page: Page, dashboard: str, seeded: Seeded) -> None:
    await page.route(
        "**/api/ops/series*",
        lambda route: route.fulfill(
            status=503,
            content_type="application/json",
            body='{"error": {"code": "database_unavailable",'
            ' "message": "PostgreSQL is not reachable"}}',
        ),
    )
    await open_ops(page, dashboard, f"env={seeded.env}&auto=off", state="error")
    text = await page.text_content("[data-testid=status-text]") or ""
    assert "503 PostgreSQL is not reachable" in text
    assert await page.is_visible("[data-testid=retry]")

    await page.unroute("**/api/ops/series*")
    await page.click("[data-testid=retry]")
    await wait_state(page, "ready")
    assert not await page.is_visible("[data-testid=status]")


async def test_the_test_event_button_makes_the_card_change(page: Page, dashboard: str) -> None:
    env = f"btn-{uuid.uuid4().hex[:6]}"
    await open_ops(page, dashboard, f"env={env}&auto=off", state="empty")
    assert await page.is_visible("[data-testid=send-test]")
    await page.click("[data-testid=send-test]")
    await wait_state(page, "ready")  # gateway -> Kafka -> worker -> PostgreSQL -> card
    assert await page.text_content("[data-testid=kpi-total]") == "1"
    assert f"ops-dashboard/{env}/test-event" in (
        await page.text_content("[data-testid=test-result]") or ""
    )
    assert "(open, live)" in (await page.text_content("[data-testid=kpi-window]") or "")
