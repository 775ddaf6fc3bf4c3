"""Re-decide the ledger's items with new thresholds, in DuckDB, from the stored values only.

`what_if(conn, plan)` reads the `ledger` view of a warehouse connection (and, for the videos stage,
the `metadata_filtered` table's durations), runs sql/whatif_<stage>.sql for each re-decided stage
(each gives every row an outcome, made into predicted rows by sql/whatif_outcome.sql) and
sql/whatif_unchanged.sql for the others, then carries the new verdicts down the stage chain
(sql/whatif_cascade.sql, sql/whatif_newly_reached.sql). Nothing is decoded and nothing is written
but temporary tables of the connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from haic_core.sql_files import load_sql, quote_literal
from haic_core.whatif import CHAIN, CHAIN_STAGES, ROUNDED_TOLERANCE, WhatIfPlan

DECIDED_TABLE = "whatif_decided"
# Stages whose SQL keeps most rows' stored verdicts and so writes the predicted rows itself.
PASS_THROUGH = ("caption_judgement",)


@dataclass(frozen=True)
class WhatIfResult:
    """The funnel before and after per source and stage, the items that flip (nearest the new threshold
    first), the items nothing stored settles (grouped by why), and every predicted row."""

    funnel: pd.DataFrame
    flips: pd.DataFrame
    unknown: pd.DataFrame
    plan: WhatIfPlan

    @property
    def changed(self) -> bool:
        return not self.flips.empty


def what_if(conn: duckdb.DuckDBPyConnection, plan: WhatIfPlan, source: str | None = None,
            partition: str | None = None, tables_root: Path | None = None) -> WhatIfResult:
    """The plan's stages re-decided over the ledger rows of `source` / `partition` (None: all).
    `tables_root`: where the Parquet tables are (the videos stage reads the metadata durations).
    Leaves the predictions in the connection's temporary table `whatif_decided`."""
    conn.execute(load_sql("whatif_ledger"), {"stages": list(CHAIN_STAGES), "source": source, "partition": partition})
    conn.execute(load_sql("whatif_stage_rows"))
    _metadata_durations(conn, tables_root)
    first = min((CHAIN_STAGES.index(s) for s in plan.stages), default=len(CHAIN_STAGES))
    conn.execute(load_sql("whatif_create"))
    for position, stage in enumerate(CHAIN_STAGES):
        if stage in plan.settings:
            decided, params = load_sql(f"whatif_{stage}"), {**plan.settings[stage]}
            if "$tolerance" in decided:
                params["tolerance"] = ROUNDED_TOLERANCE
            sql = decided if stage in PASS_THROUGH else load_sql("whatif_outcome").format(decided=decided)
        else:
            sql, params = load_sql("whatif_unchanged"), {"stage": stage, "retried": position > first}
        conn.execute(f"INSERT INTO {DECIDED_TABLE} BY NAME ({sql})", params)
    for stage, upstream, same_items in CHAIN[first + 1:]:
        conn.execute(load_sql("whatif_cascade"), {"stage": stage, "upstream": upstream})
        conn.execute(load_sql("whatif_newly_reached"), {"stage": stage, "upstream": upstream, "same_items": same_items})
    return WhatIfResult(funnel=conn.execute(load_sql("whatif_funnel")).df(),
                        flips=conn.execute(load_sql("whatif_flips")).df(),
                        unknown=conn.execute(load_sql("whatif_unknown")).df(), plan=plan)


def predictions(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Every predicted (stage, item) of the last `what_if` on this connection."""
    return conn.execute(f"SELECT * FROM {DECIDED_TABLE} ORDER BY stage, partition, item_id").df()


def _metadata_durations(conn: duckdb.DuckDBPyConnection, tables_root: Path | None) -> None:
    """whatif_metadata_durations(partition, video_id, duration_s): the metadata durations the videos
    stage checks before fetching, from the metadata_filtered table's files where there are some."""
    folder = None if tables_root is None else Path(tables_root) / "metadata_filtered"
    files = sorted(folder.glob("*.parquet")) if folder is not None and folder.is_dir() else []
    columns = set(pq.read_schema(files[0]).names) if files else set()
    if {"video_id", "duration_s"} <= columns:
        conn.execute(load_sql("whatif_metadata_durations").format(files=quote_literal(str(folder / "*.parquet"))))
    else:
        conn.execute("CREATE OR REPLACE TEMP TABLE whatif_metadata_durations "
                     "(partition VARCHAR, video_id VARCHAR, duration_s DOUBLE)")
