"""The /ops dashboard: a read-only JSON API over the windows and alerts (`queries.py`, as role
ops_reader), its parameters (`params.py`), the read token (`access.py`), and the page with its
vendored chart library (`static/`). A process of its own, so the gateway scales alone."""
