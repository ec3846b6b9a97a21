"""Which apps an API key may send events for (the key itself is checked by
`ops_common.http.api_keys.authenticate`)."""

from __future__ import annotations

from collections.abc import Iterable

from ops_common.http.errors import AppNotAllowed

ALL_APPS = "*"


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
