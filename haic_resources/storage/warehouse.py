"""The DuckDB warehouse: a view per Parquet table, plus the aggregate tables.

Views are (re)built from whatever tables exist; the Parquet files stay the source of truth,
so a lost or locked database file is rebuilt, never repaired. Writers build a copy beside the
file and swap it in (`write_aside`): a reader's open session never blocks or fails a run.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

import duckdb
from dagster import ConfigurableResource
from pydantic import Field

from haic_core.sql_files import load_sql, quote_literal

log = logging.getLogger(__name__)

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
def _writers_lock(path: Path, timeout_s: float) -> Iterator[None]:
    """Writers of the warehouse (our steps) take turns, briefly; readers never take this lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".writer.lock"), "a+") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise WarehouseBusy(f"another writer has held {path.name} for over {timeout_s:.0f}s") from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class WarehouseBusy(RuntimeError):
    pass


def _has_unsaved_writes(path: Path) -> bool:
    wal = path.with_name(path.name + ".wal")
    return wal.exists() and wal.stat().st_size > 0


def _remove_database(path: Path) -> None:
    for leftover in (path, path.with_name(path.name + ".wal")):
        leftover.unlink(missing_ok=True)


@contextmanager
def write_aside(path: Path, timeout_s: float = 120.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to a copy of the database file, swapped in atomically when the block ends.

    The file itself is never opened for writing, so a reader holding it open (the DuckDB CLI,
    a notebook) never blocks a run, and a run never blocks a reader: the reader keeps the file
    it opened and sees the new one when it reconnects. Writers take turns on a lock file. While
    a read-write session has unsaved writes on the file (a WAL), the swap is deferred.
    An unreadable copy is rebuilt from nothing (the Parquet files are the source of truth).
    """
    with _writers_lock(path, timeout_s):
        aside = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            if path.exists():
                shutil.copyfile(path, aside)
            try:
                conn = duckdb.connect(str(aside))
            except duckdb.Error:
                _remove_database(aside)
                conn = duckdb.connect(str(aside))
            try:
                yield conn
                conn.execute("CHECKPOINT")
            finally:
                conn.close()
            if _has_unsaved_writes(path):
                # Someone's read-write session wrote to the live file and has not saved it (its
                # WAL is named after the path, not the file): a swap would orphan those writes
                # and make the next open of the new file fail. Defer to a later refresh.
                log.warning("warehouse %s not swapped: another session has unsaved writes on it (%s); the "
                            "next refresh after it closes will include these tables. Open the warehouse "
                            "read-only (duckdb -readonly) to read it.", path, path.name + ".wal")
            else:
                os.replace(aside, path)
        finally:
            _remove_database(aside)


def read_only_connect(path: Path) -> duckdb.DuckDBPyConnection:
    """How readers open the warehouse: read-only, so they hold no write lock."""
    return duckdb.connect(str(path), read_only=True)


def refresh_warehouse(path: Path, tables_root: Path, stage_order: Sequence[str] = ()) -> list[str]:
    with write_aside(path) as conn:
        return build_views(conn, tables_root, stage_order)


class WarehouseResource(ConfigurableResource):
    """The DuckDB file that holds the views and aggregate tables (HAIC_HOME/warehouse.duckdb)."""

    database: str = Field(description="path of the DuckDB database file")
    stage_order: list[str] = Field(default=[], description="the stages in pipeline order (haic_assets.stages)")

    def refresh(self, tables_root: Path) -> list[str]:
        """Rebuild the views. The warehouse is a convenience over the Parquet files: a refresh
        that cannot happen is logged, and never fails the step whose tables are already written."""
        try:
            return refresh_warehouse(Path(self.database), tables_root, self.stage_order)
        except (WarehouseBusy, duckdb.IOException) as exc:
            log.warning("warehouse %s not refreshed (%s); the next step's refresh will include these tables",
                        self.database, exc)
            return []

    def connect(self):
        """A writable connection (e.g. statistics tables); its changes are swapped in when it closes."""
        return write_aside(Path(self.database))
