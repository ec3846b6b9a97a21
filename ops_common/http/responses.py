"""Answer helpers every read API uses: JSON bodies, integer parameters, database outages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from aiohttp import web

from ops_common.postgres_pool import UNAVAILABLE

from .errors import BadParameter, DatabaseUnavailable

#: Live figures: browsers and proxies must not keep them.
NO_STORE = {"Cache-Control": "no-store"}


def json_response(body: Any, status: int = 200) -> web.Response:
    """JSON (orjson: datetimes as RFC 3339), never cached."""
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=NO_STORE
    )


@contextmanager
def database_errors() -> Iterator[None]:
    """Turn "PostgreSQL is not there" into a 503 with Retry-After instead of a 500."""
    try:
        yield
    except UNAVAILABLE as exc:
        raise DatabaseUnavailable(
            f"PostgreSQL is not reachable ({type(exc).__name__}); retry later", retry_after=5
        ) from None


def int_parameter(request: web.Request, name: str, *, default: int, low: int, high: int) -> int:
    """A query parameter as an integer in [low, high], or 400 saying what is allowed."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadParameter(
            f"{name} must be an integer from {low} to {high}",
            details=[{"field": name, "reason": f"{raw!r} is not an integer"}],
        ) from None
    if not low <= value <= high:
        raise BadParameter(
            f"{name} must be an integer from {low} to {high}",
            details=[{"field": name, "reason": f"{value} is out of range"}],
        )
    return value
