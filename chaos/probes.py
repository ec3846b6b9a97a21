"""Watching the processes while a fault runs: resident memory, liveness (and restarts, as a
supervisor would do them), Prometheus counters, and whether new connections are accepted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from devstack.processes import ManagedProcess


def rss_kib(pid: int) -> int | None:
    """VmRSS of `pid` in KiB (None when the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) if match else None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time `pid` used so far (None when the process is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # After the command: state is field 3 of stat(5), utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class RssSampler:
    """Samples VmRSS and CPU time of the process `pid_of()` returns every `interval` s."""

    pid_of: Callable[[], int | None]
    interval: float = 0.5
    samples: list[tuple[float, int]] = field(default_factory=list)  #: (monotonic, KiB)
    cpu: list[tuple[float, float]] = field(default_factory=list)  #: (monotonic, CPU s)

    async def run(self) -> None:
        """Sample until cancelled."""
        while True:
            self.sample()
            await asyncio.sleep(self.interval)

    def sample(self) -> None:
        """Take one sample now."""
        pid = self.pid_of()
        if pid is None:
            return
        now = time.monotonic()
        value = rss_kib(pid)
        used = cpu_seconds(pid)
        if value is not None:
            self.samples.append((now, value))
        if used is not None:
            self.cpu.append((now, used))

    def peak_mib(self, since: float | None = None, until: float | None = None) -> float:
        """Highest sample in [since, until], MiB (0 without samples)."""
        lo, hi = since or float("-inf"), until or float("inf")
        values = [kib for t, kib in self.samples if lo <= t <= hi]
        return round(max(values) / 1024, 1) if values else 0.0

    def last_mib(self, before: float | None = None) -> float:
        """The last sample taken before `before`, MiB (0 without samples)."""
        values = [kib for t, kib in self.samples if before is None or t <= before]
        return round(values[-1] / 1024, 1) if values else 0.0

    def cpu_share(self, since: float, until: float) -> float:
        """CPU time used per wall-clock second between the samples nearest to [since, until]
        (1.0 = one core busy; -1 without two samples)."""
        inside = [(t, c) for t, c in self.cpu if since <= t <= until]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            return -1.0
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return round((c1 - c0) / (t1 - t0), 2)


def pid_of(process: ManagedProcess) -> int | None:
    """The pid of a running ManagedProcess."""
    if process.process is None or not process.running:
        return None
    return process.process.pid


@dataclass
class Supervisor:
    """Restarts a process that exits, as Kubernetes would, and counts it; `restart` starts a
    replacement and returns it."""

    process: ManagedProcess
    restart: Callable[[], ManagedProcess]
    interval: float = 0.5
    restarts: int = 0
    exit_codes: list[int | None] = field(default_factory=list)

    async def run(self) -> None:
        """Watch until cancelled."""
        while True:
            if not self.process.running:
                self.exit_codes.append(
                    self.process.process.returncode if self.process.process else None
                )
                self.restarts += 1
                self.process = await asyncio.to_thread(self.restart)
            await asyncio.sleep(self.interval)


async def metrics(url: str, names: tuple[str, ...]) -> dict[str, float]:
    """The named counters/gauges (without labels) from a Prometheus /metrics page; {} when the
    process does not answer."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session,
            session.get(url) as response,
        ):
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError, OSError):
        return {}
    found: dict[str, float] = {}
    for name in names:
        match = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? ([0-9.e+-]+)$", text, re.MULTILINE)
        if match:
            found[name] = float(match.group(1))
    return found


@dataclass
class ConnectProbe:
    """Opens a fresh TCP connection to host:port every `interval` s and sends GET /healthz;
    records (monotonic, outcome): "answered <status>", "refused", "reset", "timeout"."""

    host: str
    port: int
    interval: float = 0.05
    outcomes: list[tuple[float, str]] = field(default_factory=list)

    async def run(self) -> None:
        """Probe until cancelled."""
        while True:
            started = time.monotonic()
            self.outcomes.append((started, await self._once()))
            await asyncio.sleep(self.interval)

    def counts(self, since: float, until: float | None = None) -> Counter[str]:
        """Outcomes of probes started in [since, until]."""
        hi = until if until is not None else float("inf")
        return Counter(o for t, o in self.outcomes if since <= t <= hi)

    async def _once(self) -> str:
        try:
            async with asyncio.timeout(3):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(
                        b"GET /healthz HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
                    )
                    await writer.drain()
                    line = await reader.readline()
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()
        except ConnectionRefusedError:
            return "refused"
        except TimeoutError:
            return "timeout"
        except OSError:
            return "reset"
        parts = line.split()
        return f"answered {parts[1].decode()}" if len(parts) > 1 else "closed without answer"
