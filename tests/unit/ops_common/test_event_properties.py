"""Property tests (Hypothesis) for the event validator: whatever JSON a client sends, the
validator either accepts it or answers EventValidationError (never another exception); what it
accepts survives the trip through Kafka unchanged; names outside the charset never pass."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_common.event import (
    NAME_PATTERN,
    EventValidationError,
    decode_wire_event,
    to_wire,
    validate_events,
)

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
EXTRA_LIMIT = 4096

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
#: What a JSON body can carry once parsed: orjson reads integers beyond 64 bits as floats.
body_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)
names = st.from_regex(NAME_PATTERN, fullmatch=True)
FIELDS = ["app", "env", "event", "ok", "latency_ms", "err_code", "extra", "ts", "id"]


@st.composite
def valid_events(draw: st.DrawFn) -> dict[str, Any]:
    event: dict[str, Any] = {
        "app": draw(names),
        "env": draw(names),
        "event": draw(names),
        "ok": draw(st.booleans()),
    }
    if draw(st.booleans()):
        event["latency_ms"] = draw(st.integers(0, 2_147_483_647))
    if draw(st.booleans()):
        event["err_code"] = draw(st.text(min_size=1, max_size=128))
    if draw(st.booleans()):
        event["extra"] = draw(st.dictionaries(st.text(max_size=8), body_scalars, max_size=5))
    if draw(st.booleans()):
        offset = draw(st.integers(-24 * 3600 + 1, 5 * 60 - 1))
        event["ts"] = (NOW + timedelta(seconds=offset)).isoformat()
    if draw(st.booleans()):
        event["id"] = str(draw(st.uuids()))
    return event


@given(item=json_values | st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=9))
@settings(max_examples=800)
def test_any_json_is_accepted_or_refused_with_field_errors(item: Any) -> None:
    errors = _errors([item])
    assert all(e.index == 0 and e.reason for e in errors)


@given(event=valid_events())
@settings(max_examples=500)
def test_valid_events_are_accepted_and_cross_kafka_unchanged(event: dict[str, Any]) -> None:
    if len(orjson.dumps(event.get("extra"))) > EXTRA_LIMIT:
        return
    (accepted,) = validate_events([event], now=NOW, max_extra_bytes=EXTRA_LIMIT)
    event_id = accepted.id or uuid.uuid4()
    wire = decode_wire_event(
        to_wire(accepted, event_id=event_id, ts=accepted.ts or NOW, received_at=NOW)
    )
    assert (wire.app, wire.env, wire.event, wire.ok) == (
        event["app"],
        event["env"],
        event["event"],
        event["ok"],
    )
    assert wire.latency_ms == event.get("latency_ms")
    assert wire.err_code == event.get("err_code")
    assert wire.extra == event.get("extra")
    assert wire.id == event_id


@given(
    event=valid_events(), field=st.sampled_from(["app", "env", "event"]), bad=st.text(max_size=80)
)
@settings(max_examples=500)
def test_names_outside_the_charset_never_pass(event: dict[str, Any], field: str, bad: str) -> None:
    if re.fullmatch(NAME_PATTERN, bad):
        return
    event.pop("extra", None)
    with pytest.raises(EventValidationError) as refused:
        validate_events([{**event, field: bad}], now=NOW, max_extra_bytes=EXTRA_LIMIT)
    assert [e.field for e in refused.value.errors] == [field]


@given(batch=st.lists(valid_events(), min_size=1, max_size=5), bad_index=st.integers(0, 4))
@settings(max_examples=200)
def test_a_bad_item_is_reported_at_its_index_only(
    batch: list[dict[str, Any]], bad_index: int
) -> None:
    bad_index %= len(batch)
    for item in batch:
        item.pop("extra", None)
    batch[bad_index] = {**batch[bad_index], "ok": "yes"}
    with pytest.raises(EventValidationError) as refused:
        validate_events(batch, now=NOW, max_extra_bytes=EXTRA_LIMIT)
    assert [(e.index, e.field) for e in refused.value.errors] == [(bad_index, "ok")]


def _errors(items: list[Any]) -> list[Any]:
    """The validator's field errors for `items` ([] when accepted); any other exception fails."""
    try:
        validate_events(items, now=NOW, max_extra_bytes=EXTRA_LIMIT)
    except EventValidationError as refused:
        return refused.errors
    return []
