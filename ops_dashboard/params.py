"""The dashboard API's query parameters: filters and a time range, validated into one value.

Bad values are a 400 naming the parameter; nothing reaches SQL unchecked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiohttp import web

from ops_common.event import NAME_PATTERN
from ops_common.http.errors import BadParameter

PERIODS = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(days=1),
    "7d": timedelta(days=7),
}
DEFAULT_PERIOD = "1h"
MAX_SPAN = timedelta(days=31)
_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True, slots=True)
class Query:
    """What a dashboard request asks for: optional exact filters and [start, end)."""

    env: str | None
    app: str | None
    event: str | None
    start: datetime
    end: datetime


def parse_query(request: web.Request, *, now: datetime | None = None) -> Query:
    """Filters `env`, `app`, `event` (exact names), and either `period` (1h, 6h, 24h, 7d) or
    `from`/`to` (RFC 3339). Raise BadParameter on anything else."""
    now = now or datetime.now(UTC)
    params = request.query
    filters = {name: _name(params.get(name), name) for name in ("env", "app", "event")}
    if "from" in params or "to" in params:
        if "period" in params:
            raise _bad("period", "give either period or from/to, not both")
        end = _time(params.get("to"), "to") if "to" in params else now
        start = _time(params.get("from"), "from") if "from" in params else end - PERIODS["1h"]
        if start >= end:
            raise _bad("from", "from must be before to")
        if end - start > MAX_SPAN:
            raise _bad("from", f"the range may span at most {MAX_SPAN.days} days")
    else:
        period = params.get("period", DEFAULT_PERIOD)
        if period not in PERIODS:
            raise _bad("period", f"period must be one of {', '.join(PERIODS)}; got {period!r}")
        start, end = now - PERIODS[period], now
    return Query(filters["env"], filters["app"], filters["event"], start, end)


def _name(value: str | None, field: str) -> str | None:
    if value is None or value == "":
        return None
    if not _NAME.fullmatch(value):
        raise _bad(field, f"{field} must be 1-64 characters of A-Z a-z 0-9 _ . : - (got {value!r})")
    return value


def _time(value: str | None, field: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value or "")
    except ValueError:
        raise _bad(field, f"{field} must be an RFC 3339 time, e.g. 2026-12-04T09:00:00Z") from None
    if parsed.tzinfo is None:
        raise _bad(field, f"{field} needs a UTC offset, e.g. 2026-12-04T09:00:00+09:00")
    return parsed


def _bad(field: str, message: str) -> BadParameter:
    return BadParameter(message, details=[{"field": field, "reason": message}])
