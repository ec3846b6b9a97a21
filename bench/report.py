"""Writing a benchmark run: a JSON file with every figure, and the Markdown table."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson


@dataclass
class Run:
    """Figures of one run, in the order measured."""

    settings: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    ratios: list[dict[str, Any]] = field(default_factory=list)

    def ratio(self, name: str, ours: str, reference: str, target: float | None) -> None:
        """Record ours / reference against a target ratio (None: informative only)."""
        reference_value = self.figures[reference]
        value = self.figures[ours] / reference_value if reference_value else float("nan")
        self.ratios.append(
            {
                "name": name,
                "ours": ours,
                "reference": reference,
                "ratio": value,
                "target": target,
                "met": None if target is None else value >= target,
            }
        )


def machine() -> dict[str, Any]:
    """Cores, memory, versions."""
    pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return {
        "cores": os.cpu_count(),
        "memory_gib": round(pages / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {
            p: version(p)
            for p in ("aiohttp", "aiokafka", "faust-streaming", "asyncpg", "orjson", "uvloop")
        },
    }


def write(run: Run, json_path: Path, markdown_path: Path, kafka_version: str) -> None:
    """Write both files."""
    data = {
        "when": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "kafka": kafka_version,
        "settings": run.settings,
        "figures": run.figures,
        "ratios": run.ratios,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    markdown_path.write_text(_markdown(data))


def _markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        "# Benchmarks",
        "",
        f"Run {data['when']} on {m['cores']} cores / {m['memory_gib']} GiB, Python "
        f"{m['python']}, Kafka {data['kafka']}. Everything shares the same machine, so only "
        "ratios measured side by side in this run mean anything. Produced by `make bench`; "
        "every figure is also in `docs/benchmarks.json`.",
        "",
        "| measurement | value |",
        "|---|---:|",
    ]
    lines += [f"| {name} | {_fmt(value)} |" for name, value in data["figures"].items()]
    lines += ["", "| ratio | ours / reference | value | target | met |", "|---|---|---:|---:|---|"]
    for r in data["ratios"]:
        target = "—" if r["target"] is None else f"≥ {r['target']}"
        met = "—" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(
            f"| {r['name']} | {r['ours']} / {r['reference']} | {r['ratio']:.2f} "
            f"| {target} | {met} |"
        )
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    return str(value)
