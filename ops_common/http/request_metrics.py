"""Request count and duration by route, method and status, the same on every HTTP service."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Histogram

from .errors import ApiError
from .middleware import route_label

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class RequestMetrics:
    """`<prefix>_http_requests_total` and `<prefix>_http_request_duration_seconds`; labels are
    bounded (route templates, not paths)."""

    def __init__(self, registry: CollectorRegistry, prefix: str) -> None:
        self.requests = Counter(
            f"{prefix}_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            f"{prefix}_http_request_duration_seconds",
            "HTTP request duration by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

    def observe(
        self,
        request: web.Request,
        response: web.StreamResponse,
        error: ApiError | None,
        seconds: float,
    ) -> None:
        """Record one answered request (an `Observer` for `error_middleware`)."""
        route = route_label(request)
        self.requests.labels(route, request.method, str(response.status)).inc()
        self.request_duration.labels(route).observe(seconds)
