"""`opsctl smoke`: the QA check of a deployed instance (the seed's qa-e2e): POST one telemetry
event and expect 201, then run the ops-alert dry run and expect `"dryRun": true`. Each step is
printed; the first failure ends it with a message that says what answered what."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

Print = Callable[[str], None]


class SmokeFailed(Exception):
    """A step did not get the answer it expects."""


def smoke(
    telemetry_url: str,
    alert_url: str,
    api_key: str,
    *,
    out: Print = print,
    timeout_s: float = 30.0,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """Run both steps; raise SmokeFailed on the first that fails."""
    for name, value in (
        ("telemetry URL (--url / TELEMETRY_URL)", telemetry_url),
        ("alert URL (--alert-url / OPS_ALERT_URL)", alert_url),
        ("API key (OPS_API_KEY)", api_key),
    ):
        if not value:
            raise SmokeFailed(f"no {name} given")
    headers = {"X-API-Key": api_key}
    with httpx.Client(timeout=timeout_s, transport=transport, headers=headers) as client:
        event = {
            "id": str(uuid.uuid4()),
            "app": "qa-e2e",
            "env": "qa",
            "event": "smoke",
            "ok": True,
            "latency_ms": 1,
        }
        body = _post(client, "1/2 telemetry", telemetry_url, event, expect=201)
        if body.get("ids") != [event["id"]]:
            raise SmokeFailed(f"1/2 telemetry: 201 without the event's id: {body}")
        out(f"[1/2] POST {telemetry_url} -> 201, accepted {body.get('accepted')} ({event['id']})")

        body = _post(client, "2/2 ops-alert", alert_url, None, expect=200)
        if body.get("dryRun") is not True:
            raise SmokeFailed(f'2/2 ops-alert: expected "dryRun": true, got {body}')
        out(
            f"[2/2] POST {alert_url} -> 200, dryRun true, evaluated {body.get('evaluated')},"
            f" firing {len(body.get('firing') or [])}"
        )
    out("smoke OK")


def _post(
    client: httpx.Client, step: str, url: str, payload: object, *, expect: int
) -> dict[str, Any]:
    try:
        response = client.post(url, json=payload) if payload is not None else client.post(url)
    except httpx.HTTPError as exc:
        raise SmokeFailed(f"{step}: POST {url} failed: {exc!r}") from None
    if response.status_code != expect:
        raise SmokeFailed(
            f"{step}: POST {url} answered {response.status_code}, expected {expect}:"
            f" {response.text[:500]}"
        )
    try:
        body = response.json()
    except ValueError:
        raise SmokeFailed(f"{step}: POST {url} answered non-JSON: {response.text[:200]}") from None
    if not isinstance(body, dict):
        raise SmokeFailed(f"{step}: POST {url} answered {body!r}, expected a JSON object")
    return body
