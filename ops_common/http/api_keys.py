"""API keys: the one check every key-protected endpoint runs."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web

from ops_common.settings import api_key_digest

from .errors import MissingApiKey


@dataclass(frozen=True, slots=True)
class Caller:
    """Who a request comes from: its key's digest (for per-key limits) and allowed apps."""

    key_digest: str
    apps: frozenset[str]


def authenticate(request: web.Request, key_apps: Mapping[str, frozenset[str]]) -> Caller:
    """Return the caller of a request with a valid API key; raise 401 otherwise.

    The presented key's SHA-256 digest is compared with every configured digest in constant
    time (no early exit, `hmac.compare_digest`), so timing tells nothing about how close a
    guess came, and the plain key is never compared or kept.
    """
    key = _presented_key(request)
    if not key:
        raise MissingApiKey("send an API key in the X-API-Key header or as a Bearer token")
    presented = api_key_digest(key)
    found: frozenset[str] | None = None
    for digest, apps in key_apps.items():
        if hmac.compare_digest(presented.encode(), digest.encode()):
            found = apps
    if found is None:
        raise MissingApiKey("the API key is not valid")
    return Caller(presented, found)


def _presented_key(request: web.Request) -> str:
    key = request.headers.get("X-API-Key", "")
    if key:
        return key
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""
