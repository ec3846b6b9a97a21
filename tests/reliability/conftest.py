"""A PostgreSQL and a Kafka broker of the fault tests' own (PostgreSQL on 25500, Kafka and the
scenario processes on 29300-29399), so stopping them disturbs no other test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # `chaos` is run from the checkout (python -m chaos), not installed
    sys.path.insert(0, str(ROOT))

from chaos.scenarios import Environment  # noqa: E402
from chaos.services import ChaosPorts, Services, Tuning  # noqa: E402

PG_PORT = 25500
PORT_BASE = 29300


@pytest.fixture(scope="session")
def fault_env() -> Iterator[Environment]:
    """Fresh PostgreSQL (migrated) and broker for the fault scenarios, stopped at the end."""
    services = Services(
        ROOT / ".stack" / "reliability",
        ChaosPorts(PG_PORT, PORT_BASE),
        # Defaults, except a short grace (windows close during the test), a shorter session
        # timeout (a killed worker's partitions move sooner) and a shorter database back-off cap.
        Tuning(window_grace_s=2.0, worker_session_timeout_s=6.0, db_retry_max_s=2.0),
    )
    services.start()
    try:
        yield Environment(services, drain_timeout_s=120.0, window_timeout_s=60.0)
    finally:
        services.stop()
