"""The read token: `/ops?token=…` once sets an HttpOnly cookie (and drops the token from the
address so a shared link does not carry it); the API takes the cookie or a Bearer token."""

from __future__ import annotations

import hmac

from aiohttp import web

from ops_common.http.errors import MissingApiKey

COOKIE = "ops_dashboard_token"


def presented_token(request: web.Request) -> str:
    """The token a request carries: cookie, Bearer header or (for the page) ?token=."""
    scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and bearer.strip():
        return bearer.strip()
    return request.cookies.get(COOKIE, "") or request.query.get("token", "")


def token_matches(presented: str, expected: str) -> bool:
    """Constant-time comparison, so response timing says nothing about the token."""
    return hmac.compare_digest(presented.encode(), expected.encode())


def require_token(request: web.Request, expected: str) -> None:
    """Raise 401 unless the request carries the read token."""
    presented = presented_token(request)
    if not presented:
        raise MissingApiKey(
            "the dashboard needs its read token: open /ops?token=<OPS_DASHBOARD_TOKEN>"
        )
    if not token_matches(presented, expected):
        raise MissingApiKey("the dashboard read token is not valid")


def remember_token(response: web.StreamResponse, token: str, *, secure: bool) -> None:
    """Keep the token in an HttpOnly, same-site cookie for the page's API calls."""
    response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=secure, path="/")
