"""The DuckDB warehouse: a view per Parquet table, plus the aggregate tables.

Views are (re)built from whatever tables exist; the Parquet files stay the source of truth,
so a lost or locked database file is rebuilt, never repaired.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import duckdb
from dagster import ConfigurableResource
from pydantic import Field

from haic_core.sql_files import load_sql, quote_literal

AGGREGATES: tuple[str, ...] = ("funnel",)


def table_views(tables_root: Path) -> dict[str, str]:
    """view name -> parquet glob, for each table folder that has files."""
    views: dict[str, str] = {}
    if not tables_root.is_dir():
        return views
    ledger = tables_root / "ledger"
    if any(ledger.glob("*/*.parquet")):
        views["ledger"] = str(ledger / "*" / "*.parquet")
    for folder in sorted(p for p in tables_root.iterdir() if p.is_dir() and p.name != "ledger"):
        if any(folder.glob("*.parquet")):
            views[folder.name] = str(folder / "*.parquet")
    return views


def build_views(conn: duckdb.DuckDBPyConnection, tables_root: Path, stage_order: Sequence[str] = ()) -> list[str]:
    """A view per table, the `stage_order` table (the funnel lists stages in pipeline order) and
    the aggregates."""
    conn.execute(load_sql("create_stage_order"))
    if stage_order:
        conn.executemany("INSERT INTO stage_order VALUES (?, ?)", [(s, i) for i, s in enumerate(stage_order)])
    names = []
    for view, glob in table_views(tables_root).items():
        conn.execute(load_sql("create_table_view").format(view=view, files=quote_literal(glob)))
        names.append(view)
    if "ledger" in names:
        for aggregate in AGGREGATES:
            conn.execute(f"CREATE OR REPLACE TABLE {aggregate} AS " + load_sql(aggregate))
    return names


def in_memory_warehouse(tables_root: Path, stage_order: Sequence[str] = ()) -> duckdb.DuckDBPyConnection:
    """A private connection with the same views: for the CLI and tests, never blocked by a lock."""
    conn = duckdb.connect(":memory:")
    build_views(conn, tables_root, stage_order)
    return conn


@contextmanager
def locked_connect(path: Path, timeout_s: float = 120.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the shared database file, waiting while another process holds DuckDB's lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + timeout_s
    delay = 0.1
    while True:
        try:
            conn = duckdb.connect(str(path))
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        yield conn
    finally:
        conn.close()


def refresh_warehouse(path: Path, tables_root: Path, stage_order: Sequence[str] = ()) -> list[str]:
    with locked_connect(path) as conn:
        return build_views(conn, tables_root, stage_order)


class WarehouseResource(ConfigurableResource):
    """The DuckDB file that holds the views and aggregate tables (HAIC_HOME/warehouse.duckdb)."""

    database: str = Field(description="path of the DuckDB database file")
    stage_order: list[str] = Field(default=[], description="the stages in pipeline order (haic_assets.stages)")

    def refresh(self, tables_root: Path) -> list[str]:
        return refresh_warehouse(Path(self.database), tables_root, self.stage_order)

    def connect(self):
        return locked_connect(Path(self.database))
