"""An item's trail through the ledger (`haic why`'s walk): an item's rows, then its ancestors' back to the source metadata row, then
its descendants'.

The ledger links each item to its parent (a QA to its clip, a clip to its video), so a QA of the
split walks haicbench_split -> qa_verified -> qa_pairs (the QA), bench_captions -> annotation_tasks
-> action_filtered -> ... -> clips (its clip), videos -> metadata_filtered -> raw_metadata (its
source video). sql/why.sql finds the rows in one order, the pipeline's: the oldest ancestor first,
each item's stages in pipeline order, the descendants last.

It reads only the ledger files of the partitions that hold the trail's items, found in the
ledger's index (haic_resources/storage/ledger_index.py): the item's partitions first, then those
of the ancestors and descendants the rows name, until no new partition appears.
"""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import duckdb

from haic_core.sql_files import load_sql, quote_literal
from haic_resources.storage.ledger_index import ledger_files_of, partitions_by_key, partitions_of

MAX_ROUNDS = 12  # a trail reaches 5 generations each way: more rounds mean a cycle in the parents

# One row of a trail: sql/why.sql's columns. Plain tuples, not a frame: `haic why` starts without pandas.
TrailRow = namedtuple("TrailRow", "depth item_id item_kind stage verdict reason_code reason metric value threshold "
                                  "partition config_hash code_version run_id decided_at position")


def trail_of(conn, item_id: str) -> list[TrailRow]:
    """The item's trail over the `ledger` view of `conn`, in pipeline order (sql/why.sql orders it:
    generations from the oldest ancestor to the descendants, each item's stages in pipeline order,
    so a video's own stages and then its clips' read as the pipeline ran)."""
    return [TrailRow(*row) for row in conn.execute(load_sql("why"), [item_id]).fetchall()]


def indexed_trail(tables_root: Path, item_id: str, stage_order=()) -> tuple[list[TrailRow], duckdb.DuckDBPyConnection]:
    """`trail_of` reading only the partitions the ledger's index names for the trail's items.
    Returns the trail and the connection (its `ledger` view holds the rows read)."""
    conn = duckdb.connect(":memory:")
    conn.execute(load_sql("create_stage_order"))
    if stage_order:
        conn.executemany("INSERT INTO stage_order VALUES (?, ?)", [(s, i) for i, s in enumerate(stage_order)])
    loaded: set[str] = set()
    keys = {item_id}
    trail: list[TrailRow] = []
    for _ in range(MAX_ROUNDS):
        wanted = partitions_by_key(partitions_of(tables_root, keys, conn)) - loaded
        if not wanted and loaded:
            break
        loaded |= wanted
        files = ledger_files_of(tables_root, loaded)
        if not files:
            return [], conn
        conn.execute("CREATE OR REPLACE VIEW ledger_files AS SELECT * FROM read_parquet([" +
                     ", ".join(quote_literal(f) for f in files) + "], union_by_name = true)")
        columns = {name for (name, *_) in conn.execute("DESCRIBE ledger_files").fetchall()}
        # Ledgers written before reason codes: the same rows, with no code.
        conn.execute("CREATE OR REPLACE VIEW ledger AS SELECT *" +
                     ("" if "reason_code" in columns else ", CAST(NULL AS VARCHAR) AS reason_code") + " FROM ledger_files")
        trail = trail_of(conn, item_id)
        items = sorted({row.item_id for row in trail})
        parents = conn.execute("SELECT DISTINCT parent_id FROM ledger WHERE list_contains($1, item_id) "
                               "AND parent_id IS NOT NULL", [items]).fetchall()
        keys = set(items) | {p for (p,) in parents}
    return trail, conn
