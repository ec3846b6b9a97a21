"""The dashboard's JSON API on real PostgreSQL through the reader role: series, KPI card,
filter values, alerts, every parameter (good and bad), and the read token."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient
from support.dashboard import TOKEN, serve_dashboard
from support.tables import cases

from devstack.demo_windows import Seeded, seed_windows
from ops_common.settings import Settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def seeded(admin_dsn: str) -> Seeded:
    """7 days x 50 series of closed windows under an env of this module's own."""
    env = f"dash-{uuid.uuid4().hex[:8]}"
    return asyncio.run(seed_windows(admin_dsn, env, apps=10, events=5, days=7))


@pytest.fixture
async def dashboard(reader_dsn: str) -> AsyncIterator[TestClient]:
    settings = Settings(OPS_READER_DATABASE_URL=reader_dsn, OPS_DASHBOARD_TOKEN=TOKEN)
    async with serve_dashboard(settings) as client:
        yield client


async def get(client: TestClient, path: str, status: int = 200) -> Any:
    response = await client.get(path, headers=AUTH)
    assert response.status == status, await response.text()
    return await response.json()


async def test_series_over_7_days_sums_totals_and_takes_the_worst_p95(
    dashboard: TestClient, seeded: Seeded
) -> None:
    body = await get(dashboard, f"/api/ops/series?env={seeded.env}&period=7d")
    points = body["points"]
    assert len(points) >= len(seeded.buckets) - 1  # the oldest may fall just outside 7 d
    newest = points[-1]
    i = len(seeded.buckets) - 1
    assert datetime.fromisoformat(newest["bucket"]) == seeded.buckets[i]
    assert newest["series"] == 50
    assert newest["total"] == 50 * seeded.total(i)
    expected_failures = round(
        sum(5 * seeded.total(i) * seeded.failure_rate(i, a) for a in range(10))
    )
    assert newest["failures"] == expected_failures
    assert newest["successes"] == newest["total"] - expected_failures
    assert newest["p95_latency_ms"] == seeded.p95(i, 9)
    assert newest["avg_latency_ms"] == pytest.approx(sum(50.0 + a for a in range(10)) / 10)
    assert newest["live"] is False
    assert [p["bucket"] for p in points] == sorted(p["bucket"] for p in points)


async def test_filters_narrow_the_series(dashboard: TestClient, seeded: Seeded) -> None:
    one_app = await get(dashboard, f"/api/ops/series?env={seeded.env}&app=app3&period=1h")
    one_key = await get(dashboard, f"/api/ops/series?env={seeded.env}&app=app3&event=ev0&period=1h")
    assert {p["series"] for p in one_app["points"]} == {5}
    assert {p["series"] for p in one_key["points"]} == {1}
    i = len(seeded.buckets) - 1
    assert one_key["points"][-1]["p95_latency_ms"] == seeded.p95(i, 3)
    assert len(one_key["points"]) in (10, 11, 12)  # 1 h of closed buckets before the live ones


async def test_the_open_window_is_read_live_from_the_events(
    dashboard: TestClient, admin_db: asyncpg.Connection
) -> None:
    env = f"live-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    await admin_db.executemany(
        "INSERT INTO ops_metrics (id, ts, app, env, event, ok, latency_ms, received_at)"
        " VALUES ($1, $2, 'web', $3, 'login', $4, $5, $2)",
        [(uuid.uuid4(), now, env, i % 4 != 0, 10 * i) for i in range(1, 9)],
    )
    body = await get(dashboard, f"/api/ops/series?env={env}")
    (point,) = body["points"]
    assert point["live"] is True
    assert (point["total"], point["failures"]) == (8, 2)
    card = (await get(dashboard, f"/api/ops/kpi?env={env}"))["kpi"]
    assert card["total"] == 8
    assert card["failure_rate"] == 0.25
    assert card["live"] is True
    assert card["previous"] is None
    assert card["change"] == {"total": None, "failure_rate": None, "p95_latency_ms": None}


async def test_kpi_card_compares_with_the_previous_window(
    dashboard: TestClient, seeded: Seeded
) -> None:
    card = (await get(dashboard, f"/api/ops/kpi?env={seeded.env}&app=app0&event=ev0"))["kpi"]
    i = len(seeded.buckets) - 1
    assert card["total"] == seeded.total(i)
    assert card["change"]["total"] == seeded.total(i) - seeded.total(i - 1)
    assert card["change"]["p95_latency_ms"] == seeded.p95(i, 0) - seeded.p95(i - 1, 0)
    assert card["change"]["failure_rate"] == pytest.approx(0.0, abs=0.02)


async def test_no_data_gives_no_points_and_no_card(dashboard: TestClient) -> None:
    assert (await get(dashboard, "/api/ops/series?app=nothing-here"))["points"] == []
    assert (await get(dashboard, "/api/ops/kpi?app=nothing-here"))["kpi"] is None


async def test_filter_values_list_what_is_present(dashboard: TestClient, seeded: Seeded) -> None:
    values = await get(dashboard, "/api/ops/filters")
    assert seeded.env in values["envs"]
    assert set(seeded.apps) <= set(values["apps"])
    assert set(seeded.events) <= set(values["events"])
    assert values["envs"] == sorted(values["envs"])


async def test_alerts_are_filtered_and_limited(
    dashboard: TestClient, admin_db: asyncpg.Connection
) -> None:
    env = f"alerts-{uuid.uuid4().hex[:8]}"
    await admin_db.executemany(
        "INSERT INTO ops_alert_notifications (rule, app, env, event, kind, severity, bucket,"
        " metric, value, threshold, message, delivery)"
        " VALUES ('r', $1, $2, 'pay', $3, 'critical', now(), 'failure_rate', 0.5, 0.1, $4,"
        " 'dry_run')",
        [("shop", env, kind, f"{kind} {n}") for n, kind in enumerate(["firing", "resolved"] * 3)],
    )
    alerts = (await get(dashboard, f"/api/ops/alerts?env={env}"))["alerts"]
    assert len(alerts) == 6
    assert {a["env"] for a in alerts} == {env}
    limited = (await get(dashboard, f"/api/ops/alerts?env={env}&limit=2"))["alerts"]
    assert [a["message"] for a in limited] == [alerts[0]["message"], alerts[1]["message"]]
    assert (await get(dashboard, f"/api/ops/alerts?env={env}&app=other"))["alerts"] == []


async def test_explicit_range(dashboard: TestClient, seeded: Seeded) -> None:
    start = seeded.buckets[100]
    end = seeded.buckets[110]
    q = f"env={seeded.env}&from={start.isoformat()}&to={end.isoformat()}".replace("+", "%2B")
    points = (await get(dashboard, f"/api/ops/series?{q}"))["points"]
    assert [datetime.fromisoformat(p["bucket"]) for p in points] == seeded.buckets[100:110]


@pytest.mark.parametrize(
    ("query", "field", "says"),
    cases(
        [
            ("unknown period", "period=2h", "period", "period must be one of 1h, 6h, 24h, 7d"),
            ("bad env", "env=has%20space", "env", "env must be 1-64 characters"),
            ("bad app", "app=" + "x" * 65, "app", "app must be 1-64 characters"),
            ("bad event", "event=%2Fetc", "event", "event must be 1-64 characters"),
            ("from not a time", "from=yesterday", "from", "from must be an RFC 3339 time"),
            ("naive from", "from=2026-12-01T00:00:00", "from", "from needs a UTC offset"),
            (
                "to before from",
                "from=2026-12-02T00:00:00Z&to=2026-12-01T00:00:00Z",
                "from",
                "from must be before to",
            ),
            (
                "range too long",
                "from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z",
                "from",
                "at most 31 days",
            ),
            (
                "period and from",
                "period=1h&from=2026-12-01T00:00:00Z",
                "period",
                "either period or from/to",
            ),
        ]
    ),
)
@pytest.mark.parametrize("path", ["/api/ops/series", "/api/ops/kpi", "/api/ops/alerts"])
async def test_bad_parameters_are_400_naming_the_field(
    dashboard: TestClient, path: str, query: str, field: str, says: str
) -> None:
    body = await get(dashboard, f"{path}?{query}", status=400)
    assert body["error"]["code"] == "bad_parameter"
    assert says in body["error"]["message"]
    assert body["error"]["details"][0]["field"] == field


@pytest.mark.parametrize("limit", ["0", "201", "many"])
async def test_bad_alert_limits(dashboard: TestClient, limit: str) -> None:
    body = await get(dashboard, f"/api/ops/alerts?limit={limit}", status=400)
    assert "limit must be an integer from 1 to 200" in body["error"]["message"]


@pytest.mark.parametrize(
    "path", ["/api/ops/series", "/api/ops/kpi", "/api/ops/filters", "/api/ops/alerts"]
)
async def test_the_api_needs_the_read_token(dashboard: TestClient, path: str) -> None:
    assert (await dashboard.get(path)).status == 401
    wrong = await dashboard.get(path, headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    assert (await wrong.json())["error"]["code"] == "unauthorized"


async def test_the_page_sets_a_cookie_from_the_token_and_drops_it_from_the_address(
    dashboard: TestClient,
) -> None:
    refused = await dashboard.get("/ops")
    assert refused.status == 401
    assert "OPS_DASHBOARD_TOKEN" in await refused.text()
    signed_in = await dashboard.get(f"/ops?token={TOKEN}&env=prod", allow_redirects=False)
    assert signed_in.status == 303
    assert signed_in.headers["Location"] == "/ops?env=prod"
    assert "HttpOnly" in signed_in.headers["Set-Cookie"]
    page = await dashboard.get("/ops?env=prod")  # the client keeps the cookie
    assert page.status == 200
    html = await page.text()
    assert '"refreshSeconds": 30.0' in html
    assert "/ops/static/vendor/echarts.min.js" in html
    assert (await dashboard.get("/api/ops/filters")).status == 200
    chart_library = await dashboard.get("/ops/static/vendor/echarts.min.js")
    assert chart_library.status == 200


async def test_test_events_are_off_without_an_api_key(dashboard: TestClient) -> None:
    response = await dashboard.post("/api/ops/test-event", headers=AUTH)
    assert response.status == 404
    assert "OPS_DASHBOARD_API_KEY" in (await response.json())["error"]["message"]


async def test_a_dashboard_without_a_token_refuses_to_start(reader_dsn: str) -> None:
    from ops_dashboard.app import DashboardNotConfigured, create_app

    with pytest.raises(DashboardNotConfigured, match="OPS_DASHBOARD_TOKEN"):
        create_app(Settings(OPS_READER_DATABASE_URL=reader_dsn))
