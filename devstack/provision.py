"""`python -m devstack.provision`: install system tools and resolve the Kafka jars up front,
so the test session's own start-up is quick and its failures are about the code."""

from __future__ import annotations

from .kafka import resolve_kafka_jars
from .kustomize import ensure_kustomize
from .stack import cache_dir
from .system import ensure_system_tools


def main() -> None:
    """Make sure Java, Maven, PostgreSQL, Chromium, the Kafka jars and kustomize are here."""
    ensure_system_tools(browser=True)
    print(f"kafka jars: {resolve_kafka_jars(cache_dir())}")
    print(f"kustomize: {ensure_kustomize()}")


if __name__ == "__main__":
    main()
