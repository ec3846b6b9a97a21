"""The dashboard's HTTP routes: the page, its static files and the read-only JSON API."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
from aiohttp import web

from ops_common.http.errors import NotFound
from ops_common.http.responses import NO_STORE, database_errors, int_parameter, json_response
from ops_common.settings import Settings

from .access import presented_token, remember_token, require_token, token_matches
from .params import parse_query
from .queries import DashboardReads, kpi
from .test_event import send_test_event

STATIC = Path(__file__).resolve().parent / "static"
ALERT_LIMIT_MAX = 200


def add_routes(
    app: web.Application,
    settings: Settings,
    reads: DashboardReads,
    session: dict[str, aiohttp.ClientSession],
) -> None:
    """Register the page, the static files and the API on `app`."""
    token = settings.dashboard_token.get_secret_value() if settings.dashboard_token else ""
    page = _page(settings)

    async def ops_page(request: web.Request) -> web.StreamResponse:
        presented = presented_token(request)
        if not presented or not token_matches(presented, token):
            return web.Response(status=401, text=_LOGIN_HELP, content_type="text/html")
        if "token" in request.query:  # keep the token out of the address bar and shared links
            rest = request.rel_url.with_query(
                {k: v for k, v in request.query.items() if k != "token"}
            )
            response = web.Response(status=303, headers={"Location": str(rest)})
            remember_token(response, presented, secure=request.secure)
            return response
        return web.Response(text=page, content_type="text/html", headers=NO_STORE)

    async def series(request: web.Request) -> web.Response:
        require_token(request, token)
        query = parse_query(request)
        with database_errors():
            points = await reads.series(query)
        return json_response(
            {"from": query.start, "to": query.end, "bucket_seconds": 300, "points": points}
        )

    async def card(request: web.Request) -> web.Response:
        require_token(request, token)
        query = parse_query(request)
        with database_errors():
            points = await reads.series(query)
        return json_response({"kpi": kpi(points)})

    async def filters(request: web.Request) -> web.Response:
        require_token(request, token)
        with database_errors():
            return json_response(await reads.filter_values())

    async def alerts(request: web.Request) -> web.Response:
        require_token(request, token)
        query = parse_query(request)
        limit = int_parameter(request, "limit", default=20, low=1, high=ALERT_LIMIT_MAX)
        with database_errors():
            return json_response({"alerts": await reads.alerts(query, limit)})

    async def test_event(request: web.Request) -> web.Response:
        require_token(request, token)
        if settings.dashboard_api_key is None:
            raise NotFound("test events are off: set OPS_DASHBOARD_API_KEY to turn them on")
        env = parse_query(request).env
        sent = await send_test_event(
            session["client"],
            settings.dashboard_gateway_url,
            settings.dashboard_api_key.get_secret_value(),
            env,
        )
        return json_response(sent, status=201)

    async def no_favicon(request: web.Request) -> web.Response:
        return web.Response(status=204)

    app.router.add_get("/ops", ops_page)
    app.router.add_get("/favicon.ico", no_favicon)
    app.router.add_static("/ops/static", STATIC)
    app.router.add_get("/api/ops/series", series)
    app.router.add_get("/api/ops/kpi", card)
    app.router.add_get("/api/ops/filters", filters)
    app.router.add_get("/api/ops/alerts", alerts)
    app.router.add_post("/api/ops/test-event", test_event)


def _page(settings: Settings) -> str:
    config = {
        "refreshSeconds": settings.dashboard_refresh_s,
        "testEvents": settings.dashboard_api_key is not None,
    }
    # "</" cannot appear in the JSON, so the config cannot close its <script> element.
    config_json = json.dumps(config).replace("</", "<\\/")
    return (STATIC / "ops.html").read_text().replace("__OPS_CONFIG__", config_json)


_LOGIN_HELP = """<!doctype html><meta charset="utf-8"><title>ops — sign in</title>
<body style="font-family: system-ui; margin: 3rem">
<h1>Read token needed</h1>
<p>Open <code>/ops?token=&lt;OPS_DASHBOARD_TOKEN&gt;</code> once; the dashboard remembers it in
this browser. With <code>make up</code>, the link is
<code>$OPS_DASHBOARD_URL?token=$OPS_DASHBOARD_TOKEN</code> from <code>.stack/env</code>.</p>
</body>"""
