"""A local PostgreSQL server from the Debian binaries, in a data dir of its own."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .processes import as_service_user, wait_for_port
from .system import MissingToolError, postgres_bindir

SUPERUSER = "postgres"
#: Local development only: the server listens on 127.0.0.1 and nowhere else.
SUPERUSER_PASSWORD = "postgres"


@dataclass
class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1:`port` with its data under `base_dir`."""

    base_dir: Path
    port: int
    host: str = "127.0.0.1"
    logs_dir: Path | None = None  #: where postgres.log goes (default: base_dir)

    def __post_init__(self) -> None:
        self.base_dir = _reachable_by_service_user(self.base_dir.resolve())
        self.data_dir = self.base_dir / "data"
        self.log_path: Path = (self.logs_dir or self.base_dir).resolve() / "postgres.log"
        bindir = postgres_bindir()
        if bindir is None:
            raise MissingToolError(
                "PostgreSQL >= 15 server binaries not found (apt-get install postgresql)"
            )
        self.bindir = bindir

    def dsn(self, database: str, user: str = SUPERUSER, password: str = SUPERUSER_PASSWORD) -> str:
        """A libpq URL for `database` as `user`."""
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{database}"

    def start(self, *, fresh: bool = False) -> None:
        """Initialise the cluster if needed (or anew when `fresh`) and start it."""
        self.stop()
        if fresh and self.base_dir.exists():
            shutil.rmtree(self.base_dir)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._prepare_log()
        self._run(
            "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {self.port} -k {self.base_dir} -c listen_addresses={self.host}",
            "start",
        )
        wait_for_port(self.host, self.port, 30, log_path=self.log_path)

    def stop(self) -> None:
        """Stop the cluster if it runs (fast shutdown); safe to call twice."""
        if (self.data_dir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop", check=False)

    def create_database(self, name: str) -> None:
        """Create `name` unless it exists."""
        exists = self.psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{name}'")
        if exists.strip() != "1":
            self.psql("postgres", f'CREATE DATABASE "{name}"')

    def psql(self, database: str, sql: str) -> str:
        """Run one SQL command as the superuser and return its unaligned output."""
        result = subprocess.run(
            [
                str(self.bindir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                database,
                "-c",
                sql,
            ],
            env={**os.environ, "PGPASSWORD": SUPERUSER_PASSWORD},
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def _initdb(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pwfile = self.base_dir / "pwfile"
        pwfile.write_text(SUPERUSER_PASSWORD + "\n")
        _hand_to_service_user(self.base_dir)
        self._run(
            "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        pwfile.unlink()
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            # Throwaway local cluster: durability traded for speed, UTC for predictable output.
            conf.write(
                "\nfsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
                "timezone = 'UTC'\nmax_connections = 200\n"
            )

    def _prepare_log(self) -> None:
        # pg_ctl opens the log as the service user, who may not own the logs folder.
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.touch()
        if os.geteuid() == 0:
            shutil.chown(self.log_path, "postgres", "postgres")

    def _run(self, tool: str, *args: str, check: bool = True) -> None:
        cmd = as_service_user([str(self.bindir / tool), *args])
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{tool} failed ({result.returncode}): {result.stderr.strip() or result.stdout}"
                f"\n{self._log_tail()}"
            )

    def _log_tail(self) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])


def _hand_to_service_user(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
        for child in path.rglob("*"):
            shutil.chown(child, "postgres", "postgres")


def _reachable_by_service_user(path: Path) -> Path:
    """`path`, or a folder under /tmp when the `postgres` user cannot reach `path`.

    As root the server runs as `postgres`, which cannot enter e.g. a checkout under /root.
    """
    if os.geteuid() != 0:
        return path
    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    probe = subprocess.run(as_service_user(["test", "-x", str(parent)]), check=False)
    if probe.returncode == 0:
        path.mkdir(parents=True, exist_ok=True)
        shutil.chown(path, "postgres", "postgres")
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:12]
    fallback = Path(tempfile.gettempdir()) / f"ops-telemetry-pg-{digest}"
    fallback.mkdir(parents=True, exist_ok=True)
    shutil.chown(fallback, "postgres", "postgres")
    return fallback
