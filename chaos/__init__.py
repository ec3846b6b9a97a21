"""Fault runs of the whole pipeline on real processes (`make chaos`, `python -m chaos`):
load through the gateway with every acknowledged id recorded, a fault injected into a worker,
broker, PostgreSQL or the gateway, then the acknowledged ids and the closed windows compared
with PostgreSQL. The short version runs in the test suite (`tests/reliability/`)."""
