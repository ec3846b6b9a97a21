"""API keys: who may send, and for which apps."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiohttp import web

from ops_common.settings import api_key_digest

from .errors import AppNotAllowed, MissingApiKey

ALL_APPS = "*"


def authenticate(request: web.Request, key_apps: Mapping[str, frozenset[str]]) -> frozenset[str]:
    """Return the apps the request's API key may send for; raise 401 without a valid key.

    Keys are looked up by SHA-256 digest, so the comparison never runs over the secret itself.
    """
    key = _presented_key(request)
    if not key:
        raise MissingApiKey("send an API key in the X-API-Key header or as a Bearer token")
    apps = key_apps.get(api_key_digest(key))
    if apps is None:
        raise MissingApiKey("the API key is not valid")
    return apps


def authorize(allowed: frozenset[str], apps: Iterable[str]) -> None:
    """Raise 403 when any event's app is outside what the key allows."""
    if ALL_APPS in allowed:
        return
    refused = sorted(set(apps) - allowed)
    if refused:
        raise AppNotAllowed(
            f"this API key may not send events for app(s): {', '.join(refused)}",
            details=[
                {"field": "app", "reason": f"{app!r} is not allowed for this key"}
                for app in refused
            ],
        )


def _presented_key(request: web.Request) -> str:
    key = request.headers.get("X-API-Key", "")
    if key:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
