"""The benchmark harness runs end to end and writes its table (speed is never asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
from support.services import ROOT


def test_bench_quick_writes_the_table(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path), "--port-offset", "600"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = orjson.loads((tmp_path / "benchmarks.json").read_bytes())
    expected = {
        "broker ceiling, records/s",
        "aiokafka loop, records/s",
        "gateway 100/request, events/s",
        "gateway 500/request, events/s",
        "gateway single, requests/s",
        "no-op handler single, requests/s",
        "worker persist-only, events/s",
        "worker persist + windows, events/s",
        "getmany + COPY loop, events/s",
        "seed design (INSERT per request), events/s",
    }
    assert expected <= set(data["figures"])
    assert {n: v for n, v in data["figures"].items() if n in expected and not v > 0} == {}
    assert data["machine"]["cores"] >= 1
    table = (tmp_path / "benchmarks.md").read_text()
    assert "| gateway single vs no-op handler |" in table
