"""Applying the `sql/` migrations in order, once each, recording what was applied."""

from __future__ import annotations

from pathlib import Path

import asyncpg

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_LOCK_KEY = 0x0F5_7E1E  # advisory lock: concurrent migrators wait instead of racing

_BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text        PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


def migration_files(sql_dir: Path = SQL_DIR) -> list[Path]:
    """The migrations, in the order their names sort (`001_…`, `002_…`)."""
    return sorted(sql_dir.glob("[0-9]*.sql"))


async def migrate(
    admin_dsn: str,
    *,
    role_passwords: dict[str, str] | None = None,
    sql_dir: Path = SQL_DIR,
) -> list[str]:
    """Apply pending migrations as the administrative role; return the versions applied.

    Each migration runs in its own transaction. `role_passwords` ({role: password}) are set
    afterwards, so secrets never live in `sql/`.
    """
    conn = await asyncpg.connect(admin_dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        await conn.execute(_BOOKKEEPING)
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for path in migration_files(sql_dir):
            version = path.stem
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            applied.append(version)
        for role, password in (role_passwords or {}).items():
            # ALTER ROLE takes no bind parameters; quote_literal escapes the password server-side.
            literal = await conn.fetchval("SELECT quote_literal($1)", password)
            await conn.execute(f'ALTER ROLE "{role}" PASSWORD {literal}')
        return applied
    finally:
        await conn.close()
