"""The HTTP gateway: POST /telemetry -> Kafka.

app.py wires it; routes.py handles requests; body.py reads bodies; auth.py checks API keys;
producer.py produces to Kafka; errors.py + middleware.py turn errors into HTTP answers;
metrics.py holds every metric. Events are validated in ops_common/event.py.
"""
