"""Which partitions hold an item: the ledger's index, kept as the ledger is written.

`haic why ITEM` and `haic retry --release ITEM` need the ledger rows of one item, its ancestors
and its descendants, which live in a handful of partitions; without an index they read every
ledger file (21.5 s and 1.5 GB at 2 M rows, minutes at WebVid's 100 M). So every ledger write
also writes, in the same commit, the partition's *delta*: its keys (every item id and parent id)
with the partition, at `ledger_index/delta/<stage>__<partition>.parquet`. Deltas are merged from
time to time into one file sorted by key, `ledger_index/main.parquet`, in small row groups whose
key ranges let DuckDB read one row group per lookup. A lookup reads the main file and the deltas
written since the last merge; a key that is in no partition any more (a partition removed, an item
superseded) leads to ledger files without its rows, which costs a read and changes no answer.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping

import duckdb

from haic_core.sql_files import load_sql, quote_literal
from haic_resources.storage.files import sha256_file

if TYPE_CHECKING:  # pandas is imported where a frame is made: `haic why` and `haic funnel` start without it
    import pandas as pd

INDEX = "ledger_index"
DELTAS = f"{INDEX}/delta"
MAIN_PARTITION = "main"  # ledger_index/main.parquet
MERGE_AFTER_DELTAS = 256  # a writer that finds more deltas than this merges them
ROW_GROUP_ROWS = 8192  # rows per row group of the main file: what one lookup reads
MERGE_MEMORY = "1GB"  # DuckDB's limit while merging: beyond it the sort spills to disk beside the index


def delta_name(stage: str, partition: str) -> str:
    return f"{stage}__{partition}"


def index_frame(ledger_rows: pd.DataFrame, partition: str) -> pd.DataFrame:
    """The keys of a partition's ledger rows of one stage (item ids and parent ids), with the partition."""
    import pandas as pd

    columns = [c for c in ("item_id", "parent_id") if c in ledger_rows.columns]  # old ledgers may lack parents
    keys = pd.concat([ledger_rows[c] for c in columns], ignore_index=True).dropna()
    keys = pd.Series(keys.astype(str).unique(), name="key")
    return pd.DataFrame({"key": keys.sort_values(ignore_index=True), "partition": partition}).astype(str)


def index_files(stage: str, partition: str, ledger_rows: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """The delta to write in the same commit as the partition's ledger rows of `stage`."""
    return {(DELTAS, delta_name(stage, partition)): index_frame(ledger_rows, partition)}


def _sources(tables_root: Path) -> list[str]:
    files = [tables_root / INDEX / f"{MAIN_PARTITION}.parquet"] if (tables_root / INDEX / f"{MAIN_PARTITION}.parquet").is_file() else []
    files += sorted((tables_root / DELTAS).glob("*.parquet"))
    return [str(f) for f in files]


def partitions_of(tables_root: Path, keys: Iterable[str], conn: duckdb.DuckDBPyConnection | None = None
                  ) -> dict[str, set[str]]:
    """key -> the partitions whose ledger rows name it (as item or parent)."""
    keys = sorted(set(keys))
    files = _sources(tables_root)
    if not keys or not files:
        return {}
    own = conn is None
    conn = conn or duckdb.connect(":memory:")
    try:
        found: dict[str, set[str]] = {}
        literal_keys = ", ".join(quote_literal(k) for k in keys)
        rows = conn.execute(load_sql("ledger_index_lookup").format(files=_file_list(files), keys=literal_keys)).fetchall()
        for key, partition in rows:
            found.setdefault(key, set()).add(partition)
        return found
    finally:
        if own:
            conn.close()


def merge(tables, tables_root: Path) -> int:
    """Merge the deltas into the main file (sorted by key, small row groups); returns how many
    deltas were merged. A delta rewritten while the merge ran (its bytes changed) is kept for the
    next merge. The caller holds the index's lock (one merger at a time)."""
    built = tables.store.exists(BUILT_MARKER)
    if not built:
        # Before the first merge every ledger file written with the index has its delta: those without
        # one were written before the index existed, and get theirs now (after a merge, a missing
        # delta means merged, so the marker must say that this was done).
        _index_files_without_delta(tables, tables_root)
    deltas = sorted((tables_root / DELTAS).glob("*.parquet"))
    if not deltas:
        if not built:
            tables.store.put_bytes(BUILT_MARKER, b'{"built": true}\n')
        return 0
    seen = {d: sha256_file(d) for d in deltas}
    main = tables_root / INDEX / f"{MAIN_PARTITION}.parquet"
    sources = ([str(main)] if main.is_file() else []) + [str(d) for d in deltas]
    with tempfile.TemporaryDirectory(dir=tables_root / INDEX) as scratch:
        merged = Path(scratch) / "main.parquet"
        conn = duckdb.connect(":memory:")
        try:
            conn.execute(f"SET temp_directory = {quote_literal(scratch)}")
            conn.execute(f"SET memory_limit = {quote_literal(MERGE_MEMORY)}")  # sorts 100 M keys by spilling
            conn.execute(load_sql("ledger_index_merge").format(files=_file_list(sources), target=quote_literal(
                str(merged)), row_group_rows=ROW_GROUP_ROWS))
        finally:
            conn.close()
        tables.store.put_file(f"{INDEX}/{MAIN_PARTITION}.parquet", merged)
    if not built:
        tables.store.put_bytes(BUILT_MARKER, b'{"built": true}\n')
    removed = 0
    for delta, digest in seen.items():
        if delta.is_file() and sha256_file(delta) == digest:
            tables.store.delete(f"{DELTAS}/{delta.name}")
            removed += 1
    return removed


BUILT_MARKER = f"{INDEX}/built.json"  # every ledger file of the home is in the main file or has its delta


def ensure_built(tables, tables_root: Path) -> int:
    """Index the ledger files written before the index existed (once per home: the first merge does
    it and writes a marker); returns how many files it indexed."""
    if tables.store.exists(BUILT_MARKER):
        return 0
    indexed = _index_files_without_delta(tables, tables_root)
    merge(tables, tables.local_root())
    return indexed


def _index_files_without_delta(tables, tables_root: Path) -> int:
    indexed = 0
    have = {key.rsplit("/", 1)[-1] for key in tables.store.list(f"{DELTAS}/")}  # one listing, not a call per file
    for ledger_file in sorted((tables_root / "ledger").glob("*/*.parquet")):
        stage, partition = ledger_file.parent.name, ledger_file.stem
        name = delta_name(stage, partition)
        if f"{name}.parquet" in have:
            continue
        import pandas as pd  # here: a home with every file indexed (the usual `haic why`) never imports it

        tables.write(DELTAS, name, index_frame(pd.read_parquet(ledger_file), partition))
        indexed += 1
    return indexed


def delta_count(tables) -> int:
    """How many deltas wait for a merge (one listing of the table store's delta folder)."""
    return sum(1 for key in tables.store.list(f"{DELTAS}/") if key.endswith(".parquet"))


def _file_list(files: list[str]) -> str:
    return "[" + ", ".join(quote_literal(f) for f in files) + "]"


def ledger_files_of(tables_root: Path, partitions: Iterable[str]) -> list[str]:
    """Every ledger file (any stage) of the given partitions."""
    wanted = set(partitions)
    return sorted(str(p) for p in (tables_root / "ledger").glob("*/*.parquet") if p.stem in wanted)


def partitions_by_key(found: Mapping[str, set[str]]) -> set[str]:
    return {p for partitions in found.values() for p in partitions}
