"""`opsctl` command line: migrate, create-topics, config, up, smoke, hash-key."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from ops_common.logging import configure_logging
from ops_common.settings import Settings, hashed_api_key

from .migrate import migrate
from .smoke import SmokeFailed, smoke
from .topics import ensure_topics, pipeline_topics


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `opsctl` script."""
    parser = argparse.ArgumentParser(prog="opsctl", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply pending sql/ migrations (DATABASE_URL)")
    commands.add_parser("create-topics", help="create the pipeline's Kafka topics")
    commands.add_parser("config", help="list every environment variable with its default")
    up = commands.add_parser("up", help="run the whole system locally in the foreground")
    up.add_argument("--stack-dir", type=Path, default=Path(".stack"))
    up.add_argument("--port-offset", type=int, default=0)
    up.add_argument("--fresh", action="store_true", help="start from empty data")
    check = commands.add_parser(
        "smoke", help="QA check of a deployed instance: POST telemetry, run the alert dry run"
    )
    check.add_argument(
        "--url",
        default=os.environ.get("TELEMETRY_URL", ""),
        help="the full telemetry endpoint, …/telemetry (default $TELEMETRY_URL)",
    )
    check.add_argument(
        "--alert-url",
        default=os.environ.get("OPS_ALERT_URL", ""),
        help="the full ops-alert endpoint (default $OPS_ALERT_URL)",
    )
    hash_key = commands.add_parser(
        "hash-key", help="print the sha256: form of an API key for OPS_API_KEYS"
    )
    hash_key.add_argument("key", nargs="?", help="the key (read from stdin when omitted)")
    args = parser.parse_args(argv)
    if args.command == "hash-key":
        key = args.key if args.key is not None else sys.stdin.readline().strip()
        print(hashed_api_key(key))
        return 0
    if args.command == "smoke":
        # No Settings here: a QA runner has only the URLs and the key.
        return _smoke(args.url, args.alert_url, os.environ.get("OPS_API_KEY", ""))

    settings = Settings()
    configure_logging(settings.log_level, json=settings.log_json)
    if args.command == "migrate":
        applied = asyncio.run(
            migrate(
                settings.database_url.get_secret_value(), role_passwords=_role_passwords(settings)
            )
        )
        print(f"applied: {', '.join(applied) or 'nothing (up to date)'}")
    elif args.command == "create-topics":
        asyncio.run(ensure_topics(settings.kafka_bootstrap_servers, pipeline_topics(settings)))
        print("topics ready")
    elif args.command == "config":
        print(_config_table())
    elif args.command == "up":
        from devstack.stack import StackPorts, run_foreground

        return run_foreground(args.stack_dir, StackPorts(args.port_offset), fresh=args.fresh)
    return 0


def _smoke(url: str, alert_url: str, api_key: str) -> int:
    try:
        smoke(url, alert_url, api_key)
    except SmokeFailed as exc:
        print(f"smoke FAILED: {exc}", file=sys.stderr)
        return 1
    return 0


def _role_passwords(settings: Settings) -> dict[str, str]:
    passwords = {
        "ops_ingest": settings.ingest_role_password,
        "ops_reader": settings.reader_role_password,
        "ops_rollup": settings.rollup_role_password,
        "ops_alerter": settings.alert_role_password,
    }
    return {role: pw.get_secret_value() for role, pw in passwords.items() if pw is not None}


def _config_table() -> str:
    rows = []
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        name = alias.choices[0] if alias is not None and hasattr(alias, "choices") else "?"
        default = "{}" if field.default_factory is not None else field.default
        if hasattr(default, "get_secret_value"):
            default = "(secret)"
        rows.append(f"{name:<30} {default!s:<45} {field.description}")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
