"""Every Prometheus metric the gateway exports, registered on an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class GatewayMetrics:
    """Request, event and produce metrics. Labels are bounded: route, method, status, reason."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "gateway_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.request_duration = Histogram(
            "gateway_http_request_duration_seconds",
            "HTTP request duration by route.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.events_accepted = Counter(
            "gateway_events_accepted",
            "Events acknowledged by Kafka and answered 201.",
            registry=registry,
        )
        self.events_rejected = Counter(
            "gateway_events_rejected",
            "Events refused, by reason (error code); a request refused unread counts once.",
            ["reason"],
            registry=registry,
        )
        self.produce_duration = Histogram(
            "gateway_kafka_produce_duration_seconds",
            "Time from the first send of a request to Kafka's last ack.",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.inflight_events = Gauge(
            "gateway_kafka_inflight_events",
            "Events handed to the producer and not yet acknowledged or failed.",
            registry=registry,
        )
