"""The error hierarchy of every HTTP service. `middleware.error_middleware` is the one place
that turns these into HTTP answers."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A request a service refuses; `status` and `code` are what the client sees."""

    status: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        retry_after: int | None = None,
        events: int = 1,
    ) -> None:
        super().__init__(message)
        self.events = events  # how many events this refusal drops, for the rejected counter
        self.message = message
        self.details = details or []
        self.retry_after = retry_after

    def body(self) -> dict[str, Any]:
        """The JSON error body of the contract."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class MalformedBody(ApiError):
    status, code = 400, "malformed_json"


class BadParameter(ApiError):
    status, code = 400, "bad_parameter"


class MissingApiKey(ApiError):
    status, code = 401, "unauthorized"


class AppNotAllowed(ApiError):
    status, code = 403, "forbidden_app"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class BodyTimeout(ApiError):
    """The client sent its body too slowly."""

    status, code = 408, "request_timeout"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class InvalidEvents(ApiError):
    status, code = 422, "invalid_events"


class RateLimited(ApiError):
    """The API key sent more than its rate allows."""

    status, code = 429, "rate_limited"


class KafkaUnavailable(ApiError):
    """Kafka did not acknowledge in time; nothing of the request counts as accepted."""

    status, code = 503, "kafka_unavailable"


class DatabaseUnavailable(ApiError):
    """PostgreSQL did not answer; the request may be retried."""

    status, code = 503, "database_unavailable"
