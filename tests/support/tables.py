"""Table-driven tests: one row per case, readable on one line."""

from __future__ import annotations

from typing import Any

import pytest


def cases(table: list[tuple[Any, ...]]) -> list[Any]:
    """Turn `(id, *values)` rows into pytest params, keeping each row on one line."""
    return [pytest.param(*row[1:], id=row[0]) for row in table]
