"""Every Prometheus metric the gateway exports, registered on an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ops_common.http.request_metrics import LATENCY_BUCKETS, RequestMetrics


class GatewayMetrics:
    """Request, event and produce metrics. Labels are bounded: route, method, status, reason."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http = RequestMetrics(registry, "gateway")
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
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.inflight_events = Gauge(
            "gateway_kafka_inflight_events",
            "Events handed to the producer and not yet acknowledged or failed.",
            registry=registry,
        )
        self.kafka_breaker_open = Gauge(
            "gateway_kafka_breaker_open",
            "1 while Kafka does not answer and requests are answered 503 without producing.",
            registry=registry,
        )
