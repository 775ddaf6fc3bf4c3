"""The DuckDB warehouse: a view per Parquet table, plus the aggregate views (the funnel).

A view is made once per table and reads whatever partition files exist when it is queried, so a
step's refresh does not grow with history; the funnel sums small per-partition count files
written beside each ledger file (`ledger_counts`), never the whole ledger. Views are made from
whatever tables exist; the Parquet files stay the source of truth,
so a lost or locked database file is rebuilt, never repaired. Writers build a copy beside the
file and swap it in (`write_aside`): a reader's open session never blocks or fails a run.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
import shutil
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

from typing import TYPE_CHECKING

import duckdb
import pyarrow.parquet as pq

from haic_core.sql_files import load_sql, quote_literal
from haic_resources.storage.files import atomic_write_bytes

if TYPE_CHECKING:  # pandas is imported where a frame is made: `haic funnel` prints without it (start-up)
    import pandas as pd

log = logging.getLogger(__name__)

LEDGER = "ledger"
# Per-partition counts written beside each ledger file (tables/ledger_counts/<stage>/<partition>.parquet).
LEDGER_COUNTS = "ledger_counts"
# Each partition's replaced ledger rows of its last few runs (haic_core.ledger_history), for `haic diff`.
LEDGER_HISTORY = "ledger_history"
NESTED_TABLES = (LEDGER, LEDGER_COUNTS, LEDGER_HISTORY)  # one folder per stage, one file per partition
INTERNAL_FOLDERS = ("ledger_index",)  # the ledger's index (ledger_index.py): no view of its own
# Views over the ledger, made once: they read whatever files exist when they are queried.
AGGREGATE_VIEWS: tuple[str, ...] = ("funnel",)
# Which SQL each aggregate view was made from (its sha256; sql/create_view_versions.sql).
VIEW_VERSIONS = "warehouse_view_versions"


def table_glob(tables_root: Path, table: str) -> str:
    return str(tables_root / table / "*" / "*.parquet") if table in NESTED_TABLES else str(tables_root / table / "*.parquet")


def table_views(tables_root: Path, known: Sequence[str] = ()) -> dict[str, str]:
    """view name -> parquet glob, for each table folder that has files (folders of `known` views
    are not listed again: a view reads its files when it is queried, so a new file needs no rebuild)."""
    views: dict[str, str] = {}
    if not tables_root.is_dir():
        return views
    for folder in sorted(p for p in tables_root.iterdir()
                         if p.is_dir() and not p.name.startswith(".") and p.name not in INTERNAL_FOLDERS):
        glob = table_glob(tables_root, folder.name)
        if folder.name in known or any(folder.glob("*/*.parquet" if folder.name in NESTED_TABLES else "*.parquet")):
            views[folder.name] = glob
    return views


def ledger_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """The per-partition aggregate of ledger rows (sql/ledger_counts.sql), written beside them."""
    conn = duckdb.connect(":memory:")
    try:
        conn.register(LEDGER, rows)
        return conn.execute(load_sql("ledger_counts")).df()
    finally:
        conn.close()


def _current_views(conn: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return dict(conn.execute("SELECT view_name, sql FROM duckdb_views() WHERE NOT internal").fetchall())


def build_views(conn: duckdb.DuckDBPyConnection, tables_root: Path, stage_order: Sequence[str] = (),
                counts_from_files: bool = True) -> list[str]:
    """A view per table, the `stage_order` table (the funnel lists stages in pipeline order) and
    the aggregate views. Only views that do not exist yet are made, so a refresh costs the same
    at 10 partitions as at 10,000 (bench/bench_warehouse.py).

    counts_from_files: `ledger_counts` is the view over the per-partition count files (the
    warehouse file); otherwise the same aggregate computed from the ledger rows (a private
    connection, which writes nothing)."""
    conn.execute(load_sql("create_stage_order"))
    if stage_order:
        conn.executemany("INSERT INTO stage_order VALUES (?, ?)", [(s, i) for i, s in enumerate(stage_order)])
    current = _current_views(conn)
    known = [name for name, sql in current.items() if quote_literal(table_glob(tables_root, name)) in sql]
    views = table_views(tables_root, known)
    if LEDGER in views and counts_from_files and LEDGER_COUNTS not in known:
        write_missing_counts(tables_root)  # once: ledgers written before the count files existed
        views[LEDGER_COUNTS] = table_glob(tables_root, LEDGER_COUNTS)
    for view, glob in views.items():
        if view not in known:
            conn.execute(load_sql("create_table_view").format(view=view, files=quote_literal(glob)))
    if LEDGER in views:
        if not counts_from_files:
            conn.execute(f"CREATE OR REPLACE VIEW {LEDGER_COUNTS} AS " + load_sql("ledger_counts"))
        # An aggregate view is remade when its SQL file changed since it was made (a warehouse file
        # outlives upgrades: the funnel's `pending` column came after many were made).
        conn.execute(load_sql("create_view_versions"))
        made_from = dict(conn.execute(f"SELECT view, sql_sha256 FROM {VIEW_VERSIONS}").fetchall())
        for aggregate in AGGREGATE_VIEWS:
            sql = load_sql(aggregate)
            digest = hashlib.sha256(sql.encode("utf-8")).hexdigest()
            if aggregate not in current or not counts_from_files or made_from.get(aggregate) != digest:
                if counts_from_files:  # count files older than the funnel's columns are remade with it, once
                    write_missing_counts(tables_root, remake_older=True)
                if aggregate not in current:
                    conn.execute(f"DROP TABLE IF EXISTS {aggregate}")  # a warehouse from before: a table
                conn.execute(f"CREATE OR REPLACE VIEW {aggregate} AS " + sql)
                conn.execute(f"INSERT OR REPLACE INTO {VIEW_VERSIONS} VALUES (?, ?)", [aggregate, digest])
    return list(views)


# The columns a count file has had since the funnel counted kinds of item apart (issue 29).
COUNT_COLUMNS = ("source", "stage", "partition", "item_kind", "kept", "dropped", "error", "total")


def write_missing_counts(tables_root: Path, remake_older: bool = False) -> int:
    """Count files for the ledger files that have none (a home from before they existed); with
    `remake_older`, also for those whose count file lacks a column of `COUNT_COLUMNS` (written before
    the funnel counted videos and QA apart). A ledger file that cannot be read keeps its counts."""
    written = 0
    for ledger_file in sorted((tables_root / LEDGER).glob("*/*.parquet")):
        target = tables_root / LEDGER_COUNTS / ledger_file.parent.name / ledger_file.name
        if target.exists() and not (remake_older and _older_counts(target)):
            continue
        import pandas as pd

        try:
            rows = pd.read_parquet(ledger_file)
        except (OSError, ValueError) as exc:
            if not target.exists():
                raise
            log.warning("count file %s kept as it was: its ledger file cannot be read (%s)", target, exc)
            continue
        rows["partition"] = ledger_file.stem  # where the rows are filed is their partition
        counts = ledger_counts(rows)
        buffer = io.BytesIO()
        counts.to_parquet(buffer, index=False)
        atomic_write_bytes(target, buffer.getvalue())
        written += 1
    return written


def _older_counts(path: Path) -> bool:
    """Whether a count file was written before one of `COUNT_COLUMNS` (reads its footer only)."""
    try:
        names = set(pq.read_schema(path).names)
    except (OSError, ValueError):
        return True
    return not set(COUNT_COLUMNS) <= names


def in_memory_warehouse(tables_root: Path, stage_order: Sequence[str] = ()) -> duckdb.DuckDBPyConnection:
    """A private connection with the same views: for the CLI and tests, never blocked by a lock."""
    conn = duckdb.connect(":memory:")
    build_views(conn, tables_root, stage_order, counts_from_files=False)
    return conn


def funnel(tables_root: Path, stage_order: Sequence[str] = ()) -> pd.DataFrame | None:
    """`funnel_rows` as a frame; None when there is no ledger."""
    import pandas as pd

    found = funnel_rows(tables_root, stage_order)
    return None if found is None else pd.DataFrame(found[1], columns=found[0])


def funnel_rows(tables_root: Path, stage_order: Sequence[str] = ()) -> tuple[list[str], list[tuple]] | None:
    """The funnel (sql/funnel.sql) on a private connection: (columns, rows); None when there is no
    ledger. It sums the per-partition count files when every ledger file has a current one (1,000
    partitions: 7,000 small files, no ledger row read), else aggregates the ledger rows (counts
    missing or from before kinds). Plain rows, not a frame: `haic funnel` does not import pandas."""
    ledger_dir, counts_dir = tables_root / LEDGER, tables_root / LEDGER_COUNTS
    ledgers = {p.relative_to(ledger_dir) for p in ledger_dir.glob("*/*.parquet")}
    if not ledgers:
        return None
    if ledgers == {p.relative_to(counts_dir) for p in counts_dir.glob("*/*.parquet")}:
        conn = duckdb.connect(":memory:")
        try:
            conn.execute(load_sql("create_stage_order"))
            if stage_order:
                conn.executemany("INSERT INTO stage_order VALUES (?, ?)", [(s, i) for i, s in enumerate(stage_order)])
            conn.execute(load_sql("create_counts_view").format(files=quote_literal(table_glob(tables_root, LEDGER_COUNTS))))
            if set(COUNT_COLUMNS) <= {r[0] for r in conn.execute(f"DESCRIBE {LEDGER_COUNTS}").fetchall()}:
                columns, rows = _columns_and_rows(conn.execute(load_sql("funnel")))
                kind = columns.index("item_kind")
                if all(row[kind] is not None for row in rows):  # every count file counts kinds apart
                    return columns, rows
        except duckdb.Error:  # a count file of other columns (written before kinds were counted apart)
            pass
        finally:
            conn.close()
    conn = in_memory_warehouse(tables_root, stage_order)
    try:
        return _columns_and_rows(conn.execute(load_sql("funnel")))
    finally:
        conn.close()


def _columns_and_rows(result: duckdb.DuckDBPyConnection) -> tuple[list[str], list[tuple]]:
    rows = result.fetchall()
    return [d[0] for d in result.description], rows


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
