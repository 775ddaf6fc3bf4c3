"""SQL lives in sql/*.sql, one query per file: the one loader of those files, for core and resources alike."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parents[1] / "sql"


@lru_cache(maxsize=None)
def load_sql(name: str) -> str:
    path = SQL_DIR / f"{name}.sql"
    if not path.is_file():
        raise FileNotFoundError(f"no SQL file {path}")
    return path.read_text(encoding="utf-8")


def quote_literal(text: str) -> str:
    """A SQL string literal (for paths in DDL, where DuckDB takes no bound parameters)."""
    return "'" + str(text).replace("'", "''") + "'"
