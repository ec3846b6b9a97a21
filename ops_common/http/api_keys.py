"""API keys: the one check every key-protected endpoint runs."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from ops_common.settings import api_key_digest

from .errors import MissingApiKey


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


def _presented_key(request: web.Request) -> str:
    key = request.headers.get("X-API-Key", "")
    if key:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
