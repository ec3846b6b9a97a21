"""Fault runs of the whole pipeline on real processes (`make chaos`, `python -m chaos`):
load through the gateway with every acknowledged id recorded, a fault injected into a worker,
broker, PostgreSQL, the gateway or the Slack the alert agent notifies, then the acknowledged
ids and the closed windows compared with PostgreSQL. The short version runs in the test suite
(`tests/reliability/`)."""
