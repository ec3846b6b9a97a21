"""The GitHub workflows run what the project says they run: qa-e2e the smoke command with the
deployed instance's secrets, ci the same entry point as .ci/run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def steps(name: str) -> list[dict[str, Any]]:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    (job,) = workflow["jobs"].values()
    return job["steps"]


def test_qa_e2e_runs_opsctl_smoke_with_the_secrets() -> None:
    (smoke,) = [s for s in steps("qa-e2e.yml") if "opsctl smoke" in s.get("run", "")]
    assert smoke["env"] == {
        "TELEMETRY_URL": "${{ secrets.TELEMETRY_URL }}",
        "OPS_API_KEY": "${{ secrets.OPS_API_KEY }}",
        "OPS_ALERT_URL": "${{ secrets.OPS_ALERT_URL }}",
    }
    assert any(s.get("run") == "pip install ." for s in steps("qa-e2e.yml"))


def test_ci_runs_the_ci_entry_point_as_root() -> None:
    runs = [s.get("run", "") for s in steps("ci.yml")]
    assert any("sudo" in r and r.endswith("bash .ci/run") for r in runs)
