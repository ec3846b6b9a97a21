"""Unit tests for opsctl.smoke's verdicts on the answers it gets (the real stack is checked in
tests/e2e/test_local_stack.py)."""

from __future__ import annotations

import json

import httpx
import pytest

from opsctl.smoke import SmokeFailed, smoke

TELEMETRY = "http://qa.test/telemetry"
ALERT = "http://qa.test/ops-alert"


def transport(
    telemetry: tuple[int, object] | None, alert: tuple[int, object]
) -> httpx.MockTransport:
    """Answer the telemetry POST (echoing the event id when `telemetry` is None) and the alert."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/telemetry":
            if telemetry is None:
                event = json.loads(request.content)
                return httpx.Response(201, json={"accepted": 1, "ids": [event["id"]]})
            return httpx.Response(telemetry[0], json=telemetry[1])
        return httpx.Response(alert[0], json=alert[1])

    return httpx.MockTransport(answer)


def test_both_steps_pass_and_are_printed() -> None:
    lines: list[str] = []
    seed_body = {"dryRun": True, "evaluated": 4, "firing": [], "resolved": []}
    smoke(TELEMETRY, ALERT, "k", out=lines.append, transport=transport(None, (200, seed_body)))
    assert lines[0].startswith(f"[1/2] POST {TELEMETRY} -> 201, accepted 1")
    assert lines[1] == f"[2/2] POST {ALERT} -> 200, dryRun true, evaluated 4, firing 0"
    assert lines[2] == "smoke OK"


@pytest.mark.parametrize(
    ("telemetry", "alert", "says"),
    [
        (
            (401, {"error": {"message": "the API key is not valid"}}),
            (200, {}),
            "1/2 telemetry: POST http://qa.test/telemetry answered 401, expected 201",
        ),
        ((503, {"error": {}}), (200, {}), "answered 503, expected 201"),
        ((201, {"accepted": 1, "ids": ["other"]}), (200, {}), "201 without the event's id"),
        (
            None,
            (401, {"error": {}}),
            "2/2 ops-alert: POST http://qa.test/ops-alert answered 401, expected 200",
        ),
        (None, (200, {"dryRun": False}), 'expected "dryRun": true'),
        (None, (200, ["not", "an", "object"]), "expected a JSON object"),
    ],
)
def test_each_failure_names_the_step_and_the_answer(
    telemetry: tuple[int, object] | None, alert: tuple[int, object], says: str
) -> None:
    with pytest.raises(SmokeFailed) as failed:
        smoke(TELEMETRY, ALERT, "k", out=lambda _: None, transport=transport(telemetry, alert))
    assert says in str(failed.value)


def test_unreachable_service() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(SmokeFailed) as failed:
        smoke(TELEMETRY, ALERT, "k", out=lambda _: None, transport=httpx.MockTransport(refuse))
    assert "1/2 telemetry: POST http://qa.test/telemetry failed" in str(failed.value)


@pytest.mark.parametrize(
    ("url", "alert_url", "key", "says"),
    [
        ("", ALERT, "k", "no telemetry URL (--url / TELEMETRY_URL) given"),
        (TELEMETRY, "", "k", "no alert URL (--alert-url / OPS_ALERT_URL) given"),
        (TELEMETRY, ALERT, "", "no API key (OPS_API_KEY) given"),
    ],
)
def test_missing_configuration(url: str, alert_url: str, key: str, says: str) -> None:
    with pytest.raises(SmokeFailed) as failed:
        smoke(url, alert_url, key, out=lambda _: None)
    assert str(failed.value) == says
