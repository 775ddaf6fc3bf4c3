"""Two runs of a partition compared item by item, from the ledger and its bounded history.

A selector names a moment of the partition's history: a run id, a settings hash or a code version
(or a prefix of one), meaning "when the last snapshot it names was written". The ledger as it stood
then is, per stage, the newest snapshot written by that moment; `diff` compares two such states and
lists, per stage, the items whose verdict, reason or measured value changed (sql/diff_*.sql).
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb
import pandas as pd

from haic_core.sql_files import load_sql

HISTORY_VIEW = "ledger_history"


@dataclass(frozen=True)
class RunDiff:
    runs: pd.DataFrame      # every kept run of the partition, oldest first
    before: str             # the selected moments, as run ids (the run whose snapshot is newest by then)
    after: str
    summary: pd.DataFrame   # per stage: the two sides' runs, settings hashes, sizes and change counts
    changes: pd.DataFrame   # per changed item: both sides

    @property
    def differ(self) -> bool:
        return not self.changes.empty


def load_partition(conn: duckdb.DuckDBPyConnection, partition: str) -> pd.DataFrame:
    """Stage the partition's kept runs in the connection; return them (oldest first)."""
    views = {name for (name,) in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    history = load_sql("diff_history_part") if HISTORY_VIEW in views else ""
    conn.execute(load_sql("diff_snapshots").format(history=history), {"partition": partition})
    return conn.execute(load_sql("diff_runs")).df()


def moment(conn: duckdb.DuckDBPyConnection, runs: pd.DataFrame, selector: str):
    """When the snapshots `selector` names were last written; ValueError naming the kept runs if none."""
    at = conn.execute(load_sql("diff_moment"), {"selector": selector}).fetchone()[0]
    if at is None:
        raise ValueError(f"no kept run, settings hash or code version starts with {selector!r}; kept runs: "
                         + "; ".join(f"{r.run_id} ({r.written_at})" for r in runs.itertuples(index=False)))
    return at


def diff(conn: duckdb.DuckDBPyConnection, partition: str, before: str | None = None,
         after: str | None = None) -> RunDiff:
    """The partition's ledger at `before` against `after` (default: its previous run against its last)."""
    runs = load_partition(conn, partition)
    if runs.empty:
        raise ValueError(f"no ledger rows for partition {partition!r}")
    after_at = moment(conn, runs, after) if after else runs["written_at"].iloc[-1]
    if before:
        before_at = moment(conn, runs, before)
    else:
        earlier = runs[runs["written_at"] < after_at]
        if earlier.empty:
            raise ValueError(f"only one run of {partition!r} is kept, so there is nothing to compare it with "
                             "(earlier runs are kept from now on: platform.ledger_history_runs)")
        before_at = earlier["written_at"].iloc[-1]
    conn.execute(load_sql("diff_states"), {"before": before_at, "after": after_at})
    changes = conn.execute(load_sql("diff_changes")).df()
    conn.register("diff_changed", changes)
    try:
        summary = conn.execute(load_sql("diff_summary")).df()
    finally:
        conn.unregister("diff_changed")
    return RunDiff(runs=runs, before=_run_at(runs, before_at), after=_run_at(runs, after_at), summary=summary,
                   changes=changes)


def _run_at(runs: pd.DataFrame, at) -> str:
    return str(runs.loc[runs["written_at"] <= at, "run_id"].iloc[-1])
