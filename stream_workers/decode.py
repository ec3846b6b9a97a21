"""Turning consumed Kafka messages into events to store, or into dead letters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from ops_common.event import WireEvent, decode_wire_event


@dataclass(frozen=True, slots=True)
class ConsumedMessage:
    """A message as the persist agent took it from the telemetry topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class ConsumedEvent:
    """A decoded event with where it came from."""

    partition: int
    offset: int
    event: WireEvent


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message the workers will not store, with why."""

    raw: bytes  #: the message value exactly as consumed
    key: bytes | None  #: the message key as consumed
    reason: str  #: bounded reason code: undecodable, invalid, refused_by_db
    detail: str  #: human-readable explanation


@dataclass(frozen=True, slots=True)
class DecodedBatch:
    """What a consumed batch holds: distinct events to store, and the messages refused."""

    events: list[ConsumedEvent]
    dead_letters: list[DeadLetter]
    repeated: int  #: valid messages dropped because an earlier one in the batch had their id


def decode_batch(messages: Sequence[ConsumedMessage]) -> DecodedBatch:
    """Decode a batch; the first of several messages with one id wins."""
    events: dict[object, ConsumedEvent] = {}
    dead: list[DeadLetter] = []
    valid = 0
    for message in messages:
        raw = message.value or b""
        try:
            event = decode_wire_event(raw)
        except ValidationError as exc:
            reason = "undecodable" if _is_json_error(exc) else "invalid"
            dead.append(DeadLetter(raw, message.key, reason, _summary(exc)))
            continue
        valid += 1
        events.setdefault(event.id, ConsumedEvent(message.partition, message.offset, event))
    return DecodedBatch(list(events.values()), dead, valid - len(events))


def _is_json_error(exc: ValidationError) -> bool:
    return any(err["type"] == "json_invalid" for err in exc.errors())


def _summary(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'message'}: {err['msg']}"
        for err in exc.errors()[:5]
    )
