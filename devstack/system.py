"""Making sure the machine has Java, Maven and PostgreSQL binaries, and for the browser tests
Chromium (Debian packages)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

_PACKAGES = {
    "java": "openjdk-17-jre-headless",
    "mvn": "maven",
    "postgres": "postgresql",
}
#: Only the browser tests and the screenshot script need it.
_BROWSER_PACKAGES = {"chromium": "chromium"}


class MissingToolError(RuntimeError):
    """A required system tool is absent and could not be installed."""


def postgres_bindir() -> Path | None:
    """The newest PostgreSQL (>= 15) server bindir from the Debian layout, if installed."""
    candidates = sorted(
        (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin") if Path(p, "initdb").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    usable = [p for p in candidates if p.parent.name.isdigit() and int(p.parent.name) >= 15]
    return usable[-1] if usable else None


def ensure_system_tools(*, browser: bool = False) -> None:
    """Install whatever of Java, Maven and PostgreSQL (and Chromium with `browser`) is missing,
    via apt-get when root."""
    wanted = {**_PACKAGES, **(_BROWSER_PACKAGES if browser else {})}
    missing = [pkg for tool, pkg in wanted.items() if not _present(tool)]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise MissingToolError(
            f"missing system packages {missing}; install them (e.g. sudo apt-get install "
            f"{' '.join(missing)}) and run again"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
        check=True,
        env=env,
    )
    still = [pkg for tool, pkg in wanted.items() if not _present(tool)]
    if still:
        raise MissingToolError(f"apt-get did not provide {still}")


def _present(tool: str) -> bool:
    if tool == "postgres":
        return postgres_bindir() is not None
    return shutil.which(tool) is not None
