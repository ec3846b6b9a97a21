"""The alert agent: rules (`rules.py`) judged on closed windows (`evaluation.py`), state and the
notification outbox in PostgreSQL (`alert_store.py`), Slack delivery (`slack.py`, `delivery.py`),
triggered by closed windows (`window_listener.py`), a timer and `POST /ops-alert` (`http_api.py`).
"""
