"""`opsctl up` (what `make up` runs) brings up the whole system; a POST reaches v_ops_5min and
the alert agent answers its dry run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import orjson
import pytest
from support.services import ROOT, TEST_STACK

from devstack.processes import ManagedProcess
from devstack.stack import ALERT_PASSWORD, INGEST_PASSWORD, READER_PASSWORD, ROLLUP_PASSWORD

PORT_OFFSET = 300  # away from `make up` (0) and the test services
ROLE_PASSWORDS = {
    "ops_ingest": INGEST_PASSWORD,
    "ops_reader": READER_PASSWORD,
    "ops_rollup": ROLLUP_PASSWORD,
    "ops_alerter": ALERT_PASSWORD,
}


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value.strip("'")
    return env


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[ManagedProcess, dict[str, str]]]:
    root = TEST_STACK / "e2e"
    env_file = root / "env"
    env_file.unlink(missing_ok=True)
    process = ManagedProcess(
        "opsctl-up",
        [
            sys.executable,
            "-m",
            "opsctl.cli",
            "up",
            "--stack-dir",
            str(root),
            "--port-offset",
            str(PORT_OFFSET),
            "--fresh",
        ],
        log_path=TEST_STACK / "logs" / "opsctl-up.log",
        cwd=ROOT,
    ).start()
    try:
        deadline = time.monotonic() + 180
        while not env_file.exists():
            if not process.running or time.monotonic() > deadline:
                pytest.fail(f"opsctl up did not come up; {process.tail(60)}")
            time.sleep(0.5)
        yield process, read_env(env_file)
    finally:
        process.stop(timeout=60)


async def test_post_reaches_the_view(stack: tuple[ManagedProcess, dict[str, str]]) -> None:
    _, env = stack
    request = urllib.request.Request(
        f"{env['GATEWAY_URL']}/telemetry",
        method="POST",
        data=orjson.dumps(
            {"app": "e2e", "env": "dev", "event": "login", "ok": True, "latency_ms": 42}
        ),
        headers={"X-API-Key": env["OPS_API_KEY"], "Content-Type": "application/json"},
    )
    status, body = await asyncio.to_thread(_send, request)
    assert status == 201
    event_id = orjson.loads(body)["ids"][0]
    conn = await asyncpg.connect(env["OPS_READER_DATABASE_URL"])
    try:
        deadline = time.monotonic() + 15
        row = None
        while row is None and time.monotonic() < deadline:
            row = await conn.fetchrow(
                "SELECT total, avg_latency_ms, p95_latency_ms, failure_rate FROM v_ops_5min"
                " WHERE app = 'e2e'"
            )
            await asyncio.sleep(0.1)
        assert row is not None, "no v_ops_5min row within 15 s"
        assert dict(row) == {
            "total": 1,
            "avg_latency_ms": 42.0,
            "p95_latency_ms": 42.0,
            "failure_rate": 0.0,
        }
        assert (
            await conn.fetchval("SELECT count(*) FROM ops_metrics WHERE id = $1::uuid", event_id)
            == 1
        )
    finally:
        await conn.close()


async def test_ops_alert_dry_run_answers_the_seed_contract(
    stack: tuple[ManagedProcess, dict[str, str]],
) -> None:
    _, env = stack
    request = urllib.request.Request(
        env["OPS_ALERT_URL"], method="POST", headers={"X-API-Key": env["OPS_API_KEY"]}
    )
    status, body = await asyncio.to_thread(_send, request)
    assert status == 200
    answer = orjson.loads(body)
    assert answer["dryRun"] is True
    assert {"evaluated", "firing", "resolved"} <= set(answer)
    log = TEST_STACK / "e2e" / "logs" / "alert-agent.log"
    for _ in range(100):  # the line is flushed right after the answer; allow 10 s
        if "[ops-alert] dryRun OK" in log.read_text():
            break
        await asyncio.sleep(0.1)
    assert "[ops-alert] dryRun OK" in log.read_text()


async def test_dashboard_serves_the_page_and_api_behind_its_token(
    stack: tuple[ManagedProcess, dict[str, str]],
) -> None:
    _, env = stack
    auth = {"Authorization": f"Bearer {env['OPS_DASHBOARD_TOKEN']}"}
    page = urllib.request.Request(env["OPS_DASHBOARD_URL"], headers=auth)
    status, body = await asyncio.to_thread(_send, page)
    assert status == 200
    assert b"echarts.min.js" in body
    base = env["OPS_DASHBOARD_URL"].removesuffix("/ops")
    api = urllib.request.Request(f"{base}/api/ops/filters", headers=auth)
    status, body = await asyncio.to_thread(_send, api)
    assert status == 200
    assert "e2e" in orjson.loads(body)["apps"]  # the event of test_post_reaches_the_view
    with pytest.raises(urllib.error.HTTPError) as refused:
        await asyncio.to_thread(_send, urllib.request.Request(f"{base}/api/ops/filters"))
    refused.value.close()  # an HTTPError holds the response open
    assert refused.value.code == 401


def test_opsctl_smoke_passes_against_the_stack(
    stack: tuple[ManagedProcess, dict[str, str]],
) -> None:
    _, env = stack
    result = _opsctl_smoke(
        {
            "TELEMETRY_URL": f"{env['GATEWAY_URL']}/telemetry",
            "OPS_ALERT_URL": env["OPS_ALERT_URL"],
            "OPS_API_KEY": env["OPS_API_KEY"],
        }
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"[1/2] POST {env['GATEWAY_URL']}/telemetry -> 201")
    assert lines[1].startswith(f"[2/2] POST {env['OPS_ALERT_URL']} -> 200, dryRun true")
    assert lines[-1] == "smoke OK"


def test_opsctl_smoke_fails_clearly_with_a_wrong_key(
    stack: tuple[ManagedProcess, dict[str, str]],
) -> None:
    _, env = stack
    result = _opsctl_smoke(
        {
            "TELEMETRY_URL": f"{env['GATEWAY_URL']}/telemetry",
            "OPS_ALERT_URL": env["OPS_ALERT_URL"],
            "OPS_API_KEY": "not-the-key",
        }
    )
    assert result.returncode == 1
    assert "smoke FAILED: 1/2 telemetry" in result.stderr
    assert "answered 401, expected 201" in result.stderr
    assert "the API key is not valid" in result.stderr


def test_no_secret_reaches_a_log(stack: tuple[ManagedProcess, dict[str, str]]) -> None:
    # Runs after the tests above have sent good and wrong keys, dashboard tokens and errors.
    _, env = stack
    secrets = {
        "API key": env["OPS_API_KEY"],
        "wrong API key sent by a test": "not-the-key",
        "dashboard token": env["OPS_DASHBOARD_TOKEN"],
        **{f"{role} password": pw for role, pw in ROLE_PASSWORDS.items()},
    }
    logs = sorted((TEST_STACK / "e2e" / "logs").glob("*.log"))
    assert {p.name for p in logs} >= {
        "gateway.log",
        "worker.log",
        "alert-agent.log",
        "dashboard.log",
    }
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [name for name, value in secrets.items() if value in text]
        assert leaked == [], f"{path.name} contains the {', '.join(leaked)}"


def _opsctl_smoke(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("TELEMETRY_URL", "OPS_ALERT_URL")}
    return subprocess.run(
        [sys.executable, "-m", "opsctl.cli", "smoke"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _send(request: urllib.request.Request) -> tuple[int, bytes]:
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.read()


def test_env_file_has_the_documented_names(stack: tuple[ManagedProcess, dict[str, str]]) -> None:
    _, env = stack
    for name in (
        "GATEWAY_URL",
        "OPS_API_KEY",
        "DATABASE_URL",
        "OPS_READER_DATABASE_URL",
        "OPS_INGEST_DATABASE_URL",
        "KAFKA_BOOTSTRAP_SERVERS",
        "OPS_ALERT_URL",
        "OPS_DASHBOARD_URL",
        "OPS_DASHBOARD_TOKEN",
    ):
        assert env.get(name), name


def test_sigterm_stops_everything(stack: tuple[ManagedProcess, dict[str, str]]) -> None:
    process, _ = stack
    process.signal(signal.SIGTERM)
    assert process.process is not None
    assert process.process.wait(90) == 0
    assert not (TEST_STACK / "e2e" / "env").exists()
    assert "stack stopped" in process.tail()
