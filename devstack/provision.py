"""`python -m devstack.provision`: install system tools and resolve the Kafka jars up front,
so the test session's own start-up is quick and its failures are about the code."""

from __future__ import annotations

from .kafka import resolve_kafka_jars
from .stack import cache_dir
from .system import ensure_system_tools


def main() -> None:
    """Make sure Java, Maven, PostgreSQL, Chromium and the Kafka jars are here."""
    ensure_system_tools(browser=True)
    print(f"kafka jars: {resolve_kafka_jars(cache_dir())}")


if __name__ == "__main__":
    main()
