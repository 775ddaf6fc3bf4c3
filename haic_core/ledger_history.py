"""The ledger's memory of earlier runs: a partition's replaced ledger rows, kept per stage, bounded.

A stage replaces its partition's ledger file at each run. Before it does, the rows it replaces are
appended to `ledger_history/<stage>/<partition>` as one snapshot (the run that wrote them and when),
and only the newest `keep` snapshots stay: the ledger and its history together hold at most
`keep + 1` runs of each stage and partition, whatever the number of runs. `haic diff` compares any
two of those runs. Pure: frames in, frames out.
"""

from __future__ import annotations

import pandas as pd

SNAPSHOT_RUN, SNAPSHOT_AT = "snapshot_run", "snapshot_at"
# Earlier runs kept per stage and partition, beside the current one (platform.ledger_history_runs).
DEFAULT_KEEP = 2


def snapshot_of(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows stamped with the run that wrote them: the newest row's run (a retry keeps the rows of
    the items it did not retry, with their older runs) and its time."""
    newest = rows["decided_at"].idxmax()
    return rows.assign(**{SNAPSHOT_RUN: rows.at[newest, "run_id"], SNAPSHOT_AT: rows.at[newest, "decided_at"]})


def kept_history(history: pd.DataFrame | None, replaced: pd.DataFrame, keep: int) -> pd.DataFrame | None:
    """The history after `replaced` (the rows a run is about to replace) joins it: the newest `keep`
    snapshots, oldest first. None when there is nothing to keep."""
    if keep <= 0 or replaced is None or replaced.empty:
        return None if history is None or keep <= 0 else _newest(history, keep)
    frames = [f for f in (history, snapshot_of(replaced)) if f is not None and len(f)]
    return _newest(pd.concat(frames, ignore_index=True), keep)


def _newest(history: pd.DataFrame, keep: int) -> pd.DataFrame:
    stamps = (history[[SNAPSHOT_RUN, SNAPSHOT_AT]].drop_duplicates().sort_values(SNAPSHOT_AT).tail(keep))
    kept = history.merge(stamps, on=[SNAPSHOT_RUN, SNAPSHOT_AT], how="inner")
    return kept.sort_values([SNAPSHOT_AT], kind="stable").reset_index(drop=True)
