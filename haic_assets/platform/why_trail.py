"""`haic why`'s walk: an item's rows, then its ancestors' back to the source metadata row, then
its descendants'.

The ledger links each item to its parent (a QA to its clip, a clip to its video), so a QA of the
split walks haicbench_split -> qa_verified -> qa_pairs (the QA), bench_captions -> annotation_tasks
-> action_filtered -> ... -> clips (its clip), videos -> metadata_filtered -> raw_metadata (its
source video). sql/why.sql finds the rows; this module orders them stage by stage backwards.
"""

from __future__ import annotations

import pandas as pd

from haic_core.sql_files import load_sql


def trail_of(conn, item_id: str) -> pd.DataFrame:
    """The item's trail (sql/why.sql's columns): the item and its ancestors, latest stage first and
    back to the source (depth 0, -1, -2, ...), then its descendants in pipeline order."""
    rows = conn.execute(load_sql("why"), [item_id]).df()
    return order_back_to_source(rows)


def order_back_to_source(rows: pd.DataFrame) -> pd.DataFrame:
    if rows.empty:
        return rows
    back = rows[rows["depth"] <= 0].sort_values(["depth", "position", "decided_at"], ascending=[False, False, False],
                                                kind="stable")
    forward = rows[rows["depth"] > 0].sort_values(["depth", "item_id", "position", "decided_at"], kind="stable")
    return pd.concat([back, forward], ignore_index=True)
