"""The whole local system (`make up`): PostgreSQL, Kafka, migrations, topics, gateway, worker,
alert agent, dashboard."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ops_common.settings import Settings, hashed_api_key
from opsctl.migrate import migrate
from opsctl.topics import ensure_topics, pipeline_topics

from .kafka import KafkaServer
from .postgres import PostgresServer
from .processes import ManagedProcess, port_is_free, wait_http_ok
from .system import ensure_system_tools

DATABASE = "ops"
#: Local development only; the servers listen on 127.0.0.1.
INGEST_PASSWORD = "ops_ingest_dev"
READER_PASSWORD = "ops_reader_dev"
ROLLUP_PASSWORD = "ops_rollup_dev"
ALERT_PASSWORD = "ops_alerter_dev"


@dataclass(frozen=True)
class StackPorts:
    """The local ports, all shifted by one offset so several stacks can coexist."""

    offset: int = 0

    @property
    def postgres(self) -> int:
        return 15432 + self.offset

    @property
    def kafka(self) -> int:
        return 19092 + self.offset

    @property
    def kafka_controller(self) -> int:
        return 19093 + self.offset

    @property
    def gateway(self) -> int:
        return 18080 + self.offset

    @property
    def worker(self) -> int:
        return 19101 + self.offset

    @property
    def alert(self) -> int:
        return 18090 + self.offset

    @property
    def dashboard(self) -> int:
        return 18070 + self.offset


@dataclass
class Stack:
    """The running services of one local stack."""

    root: Path
    ports: StackPorts
    postgres: PostgresServer
    kafka: KafkaServer
    env: dict[str, str]
    processes: list[ManagedProcess]

    def stop(self) -> None:
        """Stop everything, newest first; safe to call twice."""
        for process in reversed(self.processes):
            process.stop()
        self.kafka.stop()
        self.postgres.stop()


def stack_env(root: Path, ports: StackPorts, pg: PostgresServer) -> dict[str, str]:
    """The environment the stack's processes get and `.stack/env` publishes."""
    api_key = _secret(root, "api-key")
    return {
        "GATEWAY_URL": f"http://127.0.0.1:{ports.gateway}",
        "OPS_API_KEY": api_key,
        "DATABASE_URL": pg.dsn(DATABASE),
        "OPS_INGEST_DATABASE_URL": pg.dsn(DATABASE, "ops_ingest", INGEST_PASSWORD),
        "OPS_READER_DATABASE_URL": pg.dsn(DATABASE, "ops_reader", READER_PASSWORD),
        "OPS_ROLLUP_DATABASE_URL": pg.dsn(DATABASE, "ops_rollup", ROLLUP_PASSWORD),
        "OPS_ALERT_DATABASE_URL": pg.dsn(DATABASE, "ops_alerter", ALERT_PASSWORD),
        "OPS_ALERT_URL": f"http://127.0.0.1:{ports.alert}/ops-alert",
        "OPS_DASHBOARD_URL": f"http://127.0.0.1:{ports.dashboard}/ops",
        "OPS_DASHBOARD_TOKEN": _secret(root, "dashboard-token"),
        "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{ports.kafka}",
        "WORKER_METRICS_URL": f"http://127.0.0.1:{ports.worker}/metrics",
        # Hashed, as production configuration should hold them (opsctl hash-key).
        "OPS_API_KEYS": json.dumps({hashed_api_key(api_key): ["*"]}),
        "OPS_GATEWAY_PORT": str(ports.gateway),
        "OPS_WORKER_HTTP_PORT": str(ports.worker),
        "OPS_ALERT_PORT": str(ports.alert),
        "OPS_DASHBOARD_PORT": str(ports.dashboard),
        "OPS_DASHBOARD_API_KEY": api_key,
        "OPS_DASHBOARD_GATEWAY_URL": f"http://127.0.0.1:{ports.gateway}",
        "OPS_WORKER_DATA_DIR": str(root / "worker-data"),
    }


def start_stack(root: Path, ports: StackPorts, *, fresh: bool = False) -> Stack:
    """Provision and start every service; return once the gateway and worker are ready."""
    ensure_system_tools()
    root = root.resolve()
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    pg = PostgresServer(root / "pg", ports.postgres, logs_dir=logs)
    pg.stop()  # a server of this stack left running by a crash is ours to restart
    _check_ports_free(ports)
    kafka = KafkaServer(
        root / "kafka", ports.kafka, ports.kafka_controller, cache_dir=cache_dir(), logs_dir=logs
    )
    env = stack_env(root, ports, pg)
    stack = Stack(root, ports, pg, kafka, env, [])
    try:
        pg.start(fresh=fresh)
        pg.create_database(DATABASE)
        kafka.start(fresh=fresh)
        settings = Settings()
        asyncio.run(
            migrate(
                env["DATABASE_URL"],
                role_passwords={
                    "ops_ingest": INGEST_PASSWORD,
                    "ops_reader": READER_PASSWORD,
                    "ops_rollup": ROLLUP_PASSWORD,
                    "ops_alerter": ALERT_PASSWORD,
                },
            )
        )
        asyncio.run(ensure_topics(env["KAFKA_BOOTSTRAP_SERVERS"], pipeline_topics(settings)))
        child_env = {**os.environ, **env}
        services = (
            ("gateway", "ingest_gateway", f"{env['GATEWAY_URL']}/readyz"),
            ("worker", "stream_workers", f"http://127.0.0.1:{ports.worker}/readyz"),
            ("alert-agent", "alert_agent", f"http://127.0.0.1:{ports.alert}/readyz"),
            ("dashboard", "ops_dashboard", f"http://127.0.0.1:{ports.dashboard}/readyz"),
        )
        for name, module, _ in services:
            stack.processes.append(
                ManagedProcess(
                    name,
                    [sys.executable, "-m", module],
                    log_path=logs / f"{name}.log",
                    env=child_env,
                ).start()
            )
        for process, (_, _, ready_url) in zip(stack.processes, services, strict=True):
            wait_http_ok(ready_url, process)
    except BaseException:
        stack.stop()
        raise
    (root / "env").write_text("".join(f"export {k}={_quote(v)}\n" for k, v in env.items()))
    return stack


def run_foreground(root: Path, ports: StackPorts, *, fresh: bool = False) -> int:
    """`make up`: start the stack, print how to use it, stop it on Ctrl-C / SIGTERM."""
    started = time.monotonic()
    stack = start_stack(root, ports, fresh=fresh)
    print(_banner(stack, time.monotonic() - started), flush=True)
    with _stop_signals() as stopping:
        while not stopping() and all(p.running for p in stack.processes):
            time.sleep(0.5)
    dead = [p for p in stack.processes if not p.running]
    stack.stop()
    (stack.root / "env").unlink(missing_ok=True)
    for process in dead:
        print(f"{process.name} exited unexpectedly; {process.tail()}", file=sys.stderr)
    print("stack stopped", flush=True)
    return 1 if dead else 0


@contextmanager
def _stop_signals() -> Iterator[Callable[[], bool]]:
    stop = {"requested": False}

    def request(signum: int, frame: object) -> None:
        stop["requested"] = True

    previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: stop["requested"]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _check_ports_free(ports: StackPorts) -> None:
    busy = [
        p
        for p in (
            ports.postgres,
            ports.kafka,
            ports.kafka_controller,
            ports.gateway,
            ports.worker,
            ports.alert,
            ports.dashboard,
        )
        if not port_is_free("127.0.0.1", p)
    ]
    if busy:
        raise RuntimeError(f"ports already in use: {busy} (another stack running?)")


def _secret(root: Path, name: str) -> str:
    # Kept across restarts so a developer's scripts and bookmarks keep working.
    root.mkdir(parents=True, exist_ok=True)
    path = root / name
    if not path.exists():
        path.write_text(secrets.token_urlsafe(24))
        path.chmod(0o600)
    return path.read_text().strip()


def cache_dir() -> Path:
    """Where downloaded artifacts (the Kafka jars) are cached; OPS_CACHE_DIR overrides."""
    return Path(os.environ.get("OPS_CACHE_DIR", Path(__file__).resolve().parent.parent / ".cache"))


def _dashboard_link(env: dict[str, str]) -> str:
    return f"{env['OPS_DASHBOARD_URL']}?token={env['OPS_DASHBOARD_TOKEN']}"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _banner(stack: Stack, seconds: float) -> str:
    env = stack.env
    shown = {
        k: v
        for k, v in env.items()
        if not k.startswith("OPS_WORKER")
        and not k.startswith("OPS_DASHBOARD_")
        and k not in ("OPS_API_KEYS", "OPS_GATEWAY_PORT", "OPS_ALERT_PORT")
    }
    lines = [f"ops-telemetry is up in {seconds:.1f}s (logs: {stack.root / 'logs'})", ""]
    lines += [f"  {k}={v}" for k, v in shown.items()]
    lines += [f"  OPS_DASHBOARD_URL={env['OPS_DASHBOARD_URL']}  (open: {_dashboard_link(env)})"]
    lines += [
        "",
        f"environment written to {stack.root / 'env'}; try:",
        "",
        '  curl -sS -X POST "$GATEWAY_URL/telemetry" -H "X-API-Key: $OPS_API_KEY" \\',
        "    -H 'Content-Type: application/json' \\",
        '    -d \'{"app":"demo","env":"dev","event":"login","ok":true,"latency_ms":42}\'',
        "",
        '  curl -sS -X POST "$OPS_ALERT_URL" -H "X-API-Key: $OPS_API_KEY"   # alert dry run',
        "",
        "(after: source .stack/env) — Ctrl-C stops everything.",
    ]
    return "\n".join(lines)
