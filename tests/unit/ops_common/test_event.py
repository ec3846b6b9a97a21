"""Unit tests for ops_common.event: client-event validation and the Kafka wire format."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from pydantic import ValidationError
from support.tables import cases

from ops_common.event import (
    EventValidationError,
    FieldError,
    TelemetryEvent,
    decode_wire_event,
    partition_key,
    to_wire,
    validate_events,
)

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
MAX_EXTRA = 100
MINIMAL: dict[str, Any] = {"app": "checkout", "env": "prod", "event": "pay", "ok": True}
EVENT_ID = "6f1c2a8e-3b4d-4c5e-9f60-718293a4b5c6"
MISSING = object()  # an override value meaning "remove this field"


def event(**overrides: Any) -> dict[str, Any]:
    """MINIMAL with fields replaced, added, or (value MISSING) removed."""
    merged = {**MINIMAL, **overrides}
    return {key: value for key, value in merged.items() if value is not MISSING}


def validate(items: list[Any], max_extra_bytes: int = MAX_EXTRA) -> list[TelemetryEvent]:
    return validate_events(items, now=NOW, max_extra_bytes=max_extra_bytes)


def errors_of(items: list[Any], max_extra_bytes: int = MAX_EXTRA) -> list[FieldError]:
    with pytest.raises(EventValidationError) as info:
        validate(items, max_extra_bytes)
    return info.value.errors


def test_minimal_event_is_valid_and_optional_fields_are_none() -> None:
    [result] = validate([event()])
    assert (result.app, result.env, result.event, result.ok) == ("checkout", "prod", "pay", True)
    optional = (result.latency_ms, result.err_code, result.extra, result.ts, result.id)
    assert optional == (None, None, None, None, None)


def test_full_event_is_parsed_to_typed_values() -> None:
    full = event(ok=False, latency_ms=250, err_code="E_TIMEOUT", extra={"region": "eu"})
    [result] = validate([{**full, "ts": "2025-06-01T11:00:00Z", "id": EVENT_ID}])
    assert result.ok is False
    assert result.latency_ms == 250
    assert result.err_code == "E_TIMEOUT"
    assert result.extra == {"region": "eu"}
    assert result.ts == datetime(2025, 6, 1, 11, 0, tzinfo=UTC)
    assert result.id == uuid.UUID(EVENT_ID)


ACCEPTED: list[tuple[Any, ...]] = [
    ("name-64-chars", {"app": "a" * 64}, "app", "a" * 64),
    ("name-all-punctuation", {"env": "eu-west_1.b:2"}, "env", "eu-west_1.b:2"),
    ("latency-zero", {"latency_ms": 0}, "latency_ms", 0),
    ("latency-max", {"latency_ms": 2147483647}, "latency_ms", 2147483647),
    ("err-code-128-chars", {"err_code": "e" * 128}, "err_code", "e" * 128),
    ("extra-empty-object", {"extra": {}}, "extra", {}),
    ("ts-now", {"ts": "2025-06-01T12:00:00Z"}, "ts", NOW),
    ("ts-exactly-24h-past", {"ts": "2025-05-31T12:00:00Z"}, "ts", NOW - timedelta(hours=24)),
    ("ts-exactly-5min-future", {"ts": "2025-06-01T12:05:00Z"}, "ts", NOW + timedelta(minutes=5)),
    ("ts-with-offset", {"ts": "2025-06-01T13:00:00+02:00"}, "ts", NOW - timedelta(hours=1)),
    ("id-uppercase", {"id": EVENT_ID.upper()}, "id", uuid.UUID(EVENT_ID)),
]


@pytest.mark.parametrize(("overrides", "field", "value"), cases(ACCEPTED))
def test_accepted_values(overrides: dict[str, Any], field: str, value: Any) -> None:
    [result] = validate([event(**overrides)])
    assert getattr(result, field) == value


NAME_CASES = [
    ("missing", MISSING, "Field required"),
    ("empty", "", "should match pattern"),
    ("65-chars", "a" * 65, "should match pattern"),
    ("pipe", "a|b", "should match pattern"),
    ("space", "a b", "should match pattern"),
    ("leading-dash", "-abc", "should match pattern"),
    ("trailing-newline", "abc\n", "should match pattern"),
    ("number", 5, "valid string"),
    ("null", None, "valid string"),
]

REJECTED: list[tuple[Any, ...]] = [
    *(
        (f"{name}-{case}", {name: value}, name, reason)
        for name in ("app", "env", "event")
        for case, value, reason in NAME_CASES
    ),
    ("ok-missing", {"ok": MISSING}, "ok", "Field required"),
    ("ok-string", {"ok": "true"}, "ok", "valid boolean"),
    ("ok-int", {"ok": 1}, "ok", "valid boolean"),
    ("ok-null", {"ok": None}, "ok", "valid boolean"),
    ("latency-negative", {"latency_ms": -1}, "latency_ms", "greater than or equal to 0"),
    ("latency-float", {"latency_ms": 1.5}, "latency_ms", "valid integer"),
    ("latency-whole-float", {"latency_ms": 10.0}, "latency_ms", "valid integer"),
    ("latency-string", {"latency_ms": "10"}, "latency_ms", "valid integer"),
    ("latency-bool", {"latency_ms": True}, "latency_ms", "valid integer"),
    ("latency-too-big", {"latency_ms": 2147483648}, "latency_ms", "less than or equal to 2147"),
    ("err-code-empty", {"err_code": ""}, "err_code", "at least 1 character"),
    ("err-code-too-long", {"err_code": "e" * 129}, "err_code", "at most 128 characters"),
    ("err-code-number", {"err_code": 42}, "err_code", "valid string"),
    ("extra-list", {"extra": [1, 2]}, "extra", "valid dictionary"),
    ("extra-string", {"extra": "x"}, "extra", "valid dictionary"),
    ("extra-too-large", {"extra": {"k": "v" * 100}}, "extra", "must serialize to at most 100 b"),
    ("ts-number", {"ts": 1748779200}, "ts", "must be an RFC 3339 date-time"),
    ("ts-no-timezone", {"ts": "2025-06-01T12:00:00"}, "ts", "UTC offset"),
    ("ts-garbage", {"ts": "yesterday"}, "ts", "RFC 3339"),
    ("ts-too-old", {"ts": "2025-05-31T11:59:59Z"}, "ts", "is more than 24 hours in the past"),
    ("ts-too-new", {"ts": "2025-06-01T12:05:01Z"}, "ts", "is more than 5 minutes in the future"),
    ("id-not-uuid", {"id": "not-a-uuid"}, "id", "valid UUID"),
    ("id-number", {"id": 12345}, "id", "must be a string"),
    ("unknown-field", {"colour": "red"}, "colour", "is not a known field"),
]


@pytest.mark.parametrize(("overrides", "field", "reason"), cases(REJECTED))
def test_rejected_field(overrides: dict[str, Any], field: str, reason: str) -> None:
    errors = errors_of([event(**overrides)])
    assert len(errors) == 1, errors
    [error] = errors
    assert (error.index, error.field) == (0, field)
    assert reason in error.reason


def test_extra_within_limit_is_accepted() -> None:
    extra = {"k": "v" * 50}
    assert len(orjson.dumps(extra)) <= MAX_EXTRA
    [result] = validate([event(extra=extra)])
    assert result.extra == extra


@pytest.mark.parametrize("item", [5, "event", None, [MINIMAL]], ids=["int", "str", "null", "list"])
def test_non_object_item_is_rejected_as_a_whole(item: Any) -> None:
    assert errors_of([event(), item]) == [
        FieldError(index=1, field="", reason="event must be a JSON object")
    ]


def test_batch_errors_carry_the_bad_item_index_only() -> None:
    items = [event(), event(), event(), event(ok=MISSING, latency_ms=-5), event()]
    errors = errors_of(items)
    assert {e.index for e in errors} == {3}
    assert sorted(e.field for e in errors) == ["latency_ms", "ok"]


def test_every_bad_item_of_a_batch_is_reported() -> None:
    errors = errors_of([event(app=""), event(), event(env="a|b")])
    assert [(e.index, e.field) for e in errors] == [(0, "app"), (2, "env")]


def test_event_validation_error_message_counts_errors() -> None:
    with pytest.raises(EventValidationError, match=r"^2 invalid field\(s\)$"):
        validate([event(app="", env="")])


# --- findings: these tests fail against the current module (see report) ---------------------


def test_ts_numeric_string_is_not_taken_as_unix_time() -> None:
    # The contract (and _require_string's comment) says ts is RFC 3339 text, but pydantic's
    # lax datetime parser still reads a digit-only *string* as a Unix timestamp.
    errors = errors_of([event(ts=str(int(NOW.timestamp())))])
    assert [(e.index, e.field) for e in errors] == [(0, "ts")]


def test_deeply_nested_extra_is_a_validation_error_not_a_crash() -> None:
    # orjson.loads (what the gateway parses bodies with) accepts this 300-deep object, but
    # orjson.dumps in the extra size check refuses >254 levels with a TypeError, which pydantic
    # does not convert, so it escapes validate_events instead of an EventValidationError.
    extra = orjson.loads(b'{"a":' * 300 + b"1" + b"}" * 300)
    errors = errors_of([event(extra=extra)], max_extra_bytes=4096)
    assert [(e.index, e.field) for e in errors] == [(0, "extra")]


# --- wire format -------------------------------------------------------------------------------


FULL_WIRE = {"ok": False, "latency_ms": 17, "err_code": "E1", "extra": {"n": [1, 2], "s": "x"}}


@pytest.mark.parametrize("fields", [{}, FULL_WIRE], ids=["minimal", "full"])
def test_to_wire_decode_round_trip(fields: dict[str, Any]) -> None:
    [accepted] = validate([event(**fields)])
    event_id = uuid.UUID(EVENT_ID)
    ts = datetime(2025, 6, 1, 13, 30, tzinfo=timezone(timedelta(hours=2)))
    wire = decode_wire_event(to_wire(accepted, event_id=event_id, ts=ts, received_at=NOW))
    assert (wire.id, wire.ts, wire.received_at) == (event_id, ts, NOW)
    assert wire.ts.utcoffset() == timedelta(hours=2)
    for name in ("app", "env", "event", "ok", "latency_ms", "err_code", "extra"):
        assert getattr(wire, name) == getattr(accepted, name), name


def test_to_wire_is_json_with_string_id_and_iso_times() -> None:
    [accepted] = validate([event()])
    doc = orjson.loads(to_wire(accepted, event_id=uuid.UUID(EVENT_ID), ts=NOW, received_at=NOW))
    assert doc["id"] == EVENT_ID
    assert doc["ts"] == doc["received_at"] == "2025-06-01T12:00:00+00:00"
    assert doc["latency_ms"] is None


TIMES = {"ts": "2025-06-01T12:00:00Z", "received_at": "2025-06-01T12:00:00Z"}
BAD_WIRE: list[tuple[Any, ...]] = [
    ("garbage-bytes", b"\x00\xffnot json", None),
    ("json-array", b"[]", None),
    ("missing-id", orjson.dumps({**TIMES, **MINIMAL}), "id"),
    (
        "naive-ts",
        orjson.dumps({**TIMES, **MINIMAL, "id": EVENT_ID, "ts": "2025-06-01T12:00"}),
        "ts",
    ),
]


@pytest.mark.parametrize(("value", "bad_field"), cases(BAD_WIRE))
def test_decode_wire_event_rejects_bad_messages(value: bytes, bad_field: str | None) -> None:
    with pytest.raises(ValidationError) as info:
        decode_wire_event(value)
    if bad_field is not None:
        assert [err["loc"] for err in info.value.errors()] == [(bad_field,)]


def test_partition_key_joins_with_pipe() -> None:
    assert partition_key("checkout", "prod", "pay") == b"checkout|prod|pay"
