"""The telemetry event: what a client may send, and what travels on Kafka.

This is where an event is validated. The gateway validates client input with
`validate_events`; the workers validate what they consume with `decode_wire_event`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)

#: app / env / event: letters, digits and `_ . : -`, 1..64 characters, starting alphanumeric.
#: `|` is excluded because it separates the parts of the Kafka message key.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$"
MAX_LATENCY_MS = 2_147_483_647  # PostgreSQL integer
MAX_ERR_CODE_CHARS = 128
PAST_LIMIT = timedelta(hours=24)
FUTURE_LIMIT = timedelta(minutes=5)


_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


def _require_rfc3339(value: Any) -> Any:
    # pydantic would also take a number, or a string of digits, as a Unix time.
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise ValueError("must be an RFC 3339 date-time with a UTC offset")
    return value


def _require_string(value: Any) -> Any:
    if not isinstance(value, str):
        raise ValueError("must be a string")
    return value


Name = Annotated[StrictStr, Field(pattern=NAME_PATTERN)]
LatencyMs = Annotated[StrictInt, Field(ge=0, le=MAX_LATENCY_MS)]
ErrCode = Annotated[StrictStr, Field(min_length=1, max_length=MAX_ERR_CODE_CHARS)]
Rfc3339 = Annotated[AwareDatetime, BeforeValidator(_require_rfc3339)]
EventId = Annotated[uuid.UUID, BeforeValidator(_require_string)]


class TelemetryEvent(BaseModel):
    """One event as a client sends it. Optional fields absent are stored as NULL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    app: Name
    env: Name
    event: Name
    ok: StrictBool
    latency_ms: LatencyMs | None = None
    err_code: ErrCode | None = None
    extra: dict[str, Any] | None = None
    ts: Rfc3339 | None = None
    id: EventId | None = None

    @field_validator("extra")
    @classmethod
    def _extra_size(cls, value: dict[str, Any] | None, info: ValidationInfo) -> Any:
        limit = (info.context or {}).get("max_extra_bytes")
        if value is None or limit is None:
            return value
        try:
            size = len(orjson.dumps(value))
        except orjson.JSONEncodeError:
            raise ValueError(
                "cannot be serialized (nested too deeply, or an integer beyond 64 bits)"
            ) from None
        if size > limit:
            raise ValueError(f"must serialize to at most {limit} bytes")
        return value

    @field_validator("ts")
    @classmethod
    def _ts_window(cls, value: datetime | None, info: ValidationInfo) -> Any:
        now = (info.context or {}).get("now")
        if value is None or now is None:
            return value
        if value < now - PAST_LIMIT:
            raise ValueError("is more than 24 hours in the past")
        if value > now + FUTURE_LIMIT:
            raise ValueError("is more than 5 minutes in the future")
        return value


class WireEvent(BaseModel):
    """An accepted event as it travels on Kafka: id and times always present."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: uuid.UUID
    ts: AwareDatetime
    received_at: AwareDatetime
    app: Name
    env: Name
    event: Name
    ok: StrictBool
    latency_ms: LatencyMs | None = None
    err_code: ErrCode | None = None
    extra: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class FieldError:
    """One reason an event of a request was refused."""

    index: int  #: position of the event in the request (0 for a single object)
    field: str  #: dotted field path, or "" for the event as a whole
    reason: str  #: human-readable reason


class EventValidationError(ValueError):
    """Raised when any event of a request is invalid; carries every reason found."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} invalid field(s)")
        self.errors = errors


_batch_adapter: TypeAdapter[list[TelemetryEvent]] = TypeAdapter(list[TelemetryEvent])
_wire_adapter: TypeAdapter[WireEvent] = TypeAdapter(WireEvent)


def validate_events(
    items: list[Any], *, now: datetime, max_extra_bytes: int
) -> list[TelemetryEvent]:
    """Validate a request's decoded events; raise `EventValidationError` listing all problems."""
    try:
        return _batch_adapter.validate_python(
            items, context={"now": now, "max_extra_bytes": max_extra_bytes}
        )
    except ValidationError as exc:
        raise EventValidationError([_field_error(err) for err in exc.errors()]) from None


def _field_error(err: Any) -> FieldError:
    loc = list(err["loc"])
    index = loc.pop(0) if loc and isinstance(loc[0], int) else 0
    reason = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        reason = "is not a known field"
    elif err["type"] == "model_type":
        reason = "event must be a JSON object"
    return FieldError(index=index, field=".".join(str(part) for part in loc), reason=reason)


def to_wire(
    event: TelemetryEvent, *, event_id: uuid.UUID, ts: datetime, received_at: datetime
) -> bytes:
    """Serialize an accepted event for Kafka, with its final id and times."""
    return orjson.dumps(
        {
            "id": str(event_id),
            "ts": ts.isoformat(),
            "received_at": received_at.isoformat(),
            "app": event.app,
            "env": event.env,
            "event": event.event,
            "ok": event.ok,
            "latency_ms": event.latency_ms,
            "err_code": event.err_code,
            "extra": event.extra,
        }
    )


def partition_key(app: str, env: str, event: str) -> bytes:
    """Kafka message key: one (app, env, event) series always lands on one partition."""
    return f"{app}|{env}|{event}".encode()


def decode_wire_event(value: bytes) -> WireEvent:
    """Parse and validate one Kafka message value; raises `ValidationError` on bad data."""
    return _wire_adapter.validate_json(value)
