"""Every Prometheus metric the alert agent exports, registered on an injected registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from ops_common.http.request_metrics import RequestMetrics


class AlertMetrics:
    """Evaluations, Slack sends by outcome, and the alerts firing now. Labels are bounded."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http = RequestMetrics(registry, "alert")
        self.evaluations = Counter(
            "alert_evaluations", "Evaluation passes over the closed windows.", registry=registry
        )
        self.windows_judged = Counter(
            "alert_windows_judged", "(rule, window) pairs judged.", registry=registry
        )
        self.notifications = Counter(
            "alert_notifications",
            "Notifications by kind (firing, repeat, resolved) and mode (dry_run, armed).",
            ["kind", "mode"],
            registry=registry,
        )
        self.slack_sends = Counter(
            "alert_slack_sends",
            "Slack send attempts by outcome (sent, failed).",
            ["outcome"],
            registry=registry,
        )
        self.firing = Gauge("alert_firing", "Alerts firing now.", registry=registry)
        self.outbox = Gauge(
            "alert_outbox_pending", "Notifications waiting to reach Slack.", registry=registry
        )
