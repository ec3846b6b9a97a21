"""The gateway's OpenAPI 3.1 description, served at GET /openapi.json. The event schema is the
one the gateway validates with (`TelemetryEvent`), so the document cannot drift from the code;
what JSON Schema cannot say (the `ts` window, the serialized size of `extra`) is in the text."""

from __future__ import annotations

from typing import Any

from ops_common.event import TelemetryEvent
from ops_common.settings import Settings

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "details"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "array", "items": {"type": "object"}},
            },
        }
    },
}

_REFUSALS = {
    "400": "Malformed body: not JSON/NDJSON, not gzip, empty.",
    "401": "Missing or unknown API key.",
    "403": "The key may not send for an event's app.",
    "405": "Method not allowed on this path.",
    "408": "The body did not arrive within OPS_BODY_READ_TIMEOUT_S.",
    "413": "Body, decompressed body or event count over the limits.",
    "415": "Unsupported Content-Type or Content-Encoding.",
    "422": "Validation failed; details list index, field and reason; nothing accepted.",
    "429": "The key is over its rate limit; Retry-After says when to retry.",
    "503": "Kafka did not acknowledge in time; Retry-After set; nothing accepted.",
}


def openapi_document(settings: Settings) -> dict[str, Any]:
    """The OpenAPI 3.1 document of this gateway's configuration."""
    event = TelemetryEvent.model_json_schema(mode="validation")
    batch = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/TelemetryEvent"},
        "minItems": 1,
        "maxItems": settings.max_batch_events,
    }
    one_or_many = {"oneOf": [{"$ref": "#/components/schemas/TelemetryEvent"}, batch]}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "ops-telemetry gateway",
            "version": "1",
            "description": (
                "Telemetry ingest. `ts` must be within the last 24 h and at most 5 min ahead;"
                f" `extra` must serialize to at most {settings.max_extra_bytes} bytes; bodies up"
                f" to {settings.max_body_bytes} bytes ({settings.max_decompressed_bytes} after"
                " gzip)."
            ),
        },
        "components": {
            "schemas": {"TelemetryEvent": event, "Error": _ERROR},
            "securitySchemes": {
                "apiKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-API-Key",
                    "description": "Also accepted as `Authorization: Bearer <key>`.",
                },
            },
        },
        "paths": {
            "/telemetry": {
                "post": {
                    "summary": "Send one event or a batch; 201 once Kafka acknowledged all.",
                    "security": [{"apiKey": []}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": one_or_many},
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        "201": {
                            "description": "Accepted: every event acknowledged by Kafka.",
                            "content": {"application/json": {"schema": _ACCEPTED}},
                        },
                        **{
                            status: {
                                "description": text,
                                "content": {
                                    "application/json": {
                                        "schema": {"$ref": "#/components/schemas/Error"}
                                    }
                                },
                            }
                            for status, text in _REFUSALS.items()
                        },
                    },
                }
            },
            "/healthz": _probe("Liveness: the process serves."),
            "/readyz": _probe("Readiness: the producer has connected to Kafka (503 until it has)."),
        },
    }


_ACCEPTED = {
    "type": "object",
    "required": ["accepted", "ids"],
    "properties": {
        "accepted": {"type": "integer", "minimum": 1},
        "ids": {"type": "array", "items": {"type": "string", "format": "uuid"}},
    },
}


def _probe(summary: str) -> dict[str, Any]:
    body = {"application/json": {"schema": {"type": "object"}}}
    return {
        "get": {
            "summary": summary,
            "responses": {
                "200": {"description": "OK", "content": body},
                "503": {"description": "Not ready", "content": body},
            },
        }
    }
