"""The Faust workers: Kafka -> PostgreSQL, and the 5-minute windows.

app.py wires the agent (consume); decode.py decodes messages; persist.py + event_store.py store
them; dead_letters.py sets aside what cannot be stored; windows/ aggregates and closes the
5-minute windows; http_service.py serves /metrics and health.
"""
