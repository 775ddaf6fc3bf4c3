"""`haic diff` from the ledger's bounded history: each run's replaced rows are kept per stage and
partition (at most `keep` earlier runs), and two states of a partition compare item by item."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from haic_platform.ledger import write_ledger
from haic_core.decisions import dropped, kept
from haic_core.ledger import ledger_rows
from haic_core.run_diff import diff
from haic_resources.storage.object_store import LocalObjectStore
from haic_resources.storage.tables import TableStore
from haic_resources.storage.warehouse import in_memory_warehouse

PARTITION = "webvid__a.csv"
T0 = datetime(2026, 12, 7, 12, tzinfo=timezone.utc)


def run(tables, n: int, stage: str, decisions, keep: int = 2, config: str = "cfg"):
    rows = ledger_rows(decisions, stage=stage, partition=PARTITION, config_hash=f"{config}{n}", code_version="1",
                       run_id=f"run{n}", decided_at=T0 + timedelta(minutes=n))
    write_ledger(tables, stage, PARTITION, rows, keep)


def coverage(item, value, threshold=0.1):
    make = kept if value >= threshold else dropped
    return make(item, f"box_coverage={value} vs {threshold}", item_kind="clip", metric="box_coverage", value=value,
                threshold=threshold)


@pytest.fixture
def tables(tmp_path):
    return TableStore(LocalObjectStore(tmp_path / "tables"), tmp_path / "mirror")


def test_history_keeps_only_the_last_runs(tables, tmp_path):
    for n in range(5):
        run(tables, n, "human_presence", [coverage("c1", 0.2), coverage("c2", 0.05 + n / 100)])
    history = pd.read_parquet(tmp_path / "tables" / "ledger_history" / "human_presence" / f"{PARTITION}.parquet")
    assert sorted(set(history["snapshot_run"])) == ["run2", "run3"]  # run4 is the current ledger
    assert len(history) == 4
    conn = in_memory_warehouse(tmp_path / "tables")
    with pytest.raises(ValueError, match="no kept run"):
        diff(conn, PARTITION, before="run0")


def test_a_rerun_with_one_changed_threshold_lists_exactly_the_flipped_items(tables, tmp_path):
    values = {"c1": 0.30, "c2": 0.12, "c3": 0.05, "c4": 0.11}
    run(tables, 1, "clips", [kept(c, "scene 7 s", item_kind="clip") for c in values])
    run(tables, 1, "human_presence", [coverage(c, v) for c, v in values.items()])
    # Run 2 re-runs human_presence only, at 0.115: c4 flips; every reason's numbers change.
    run(tables, 2, "human_presence", [coverage(c, v, threshold=0.115) for c, v in values.items()])
    result = diff(in_memory_warehouse(tmp_path / "tables"), PARTITION)
    assert (result.before, result.after) == ("run1", "run2")
    assert result.changes[["stage", "item_id", "change", "verdict_before", "verdict_after"]].values.tolist() == [
        ["human_presence", "c4", "verdict", "kept", "dropped"]]
    summary = result.summary.set_index("stage")
    assert summary.loc["clips", ["run_before", "run_after", "verdict"]].tolist() == ["run1", "run1", 0]
    assert summary.loc["human_presence", ["config_before", "config_after", "items_before", "verdict"]].tolist() == [
        "cfg1", "cfg2", 4, 1]
    # By settings hash, and the same state on both sides: nothing differs.
    assert diff(in_memory_warehouse(tmp_path / "tables"), PARTITION, before="cfg2", after="run2").changes.empty


def test_values_reasons_and_items_that_appear_or_go_are_changes(tables, tmp_path):
    run(tables, 1, "human_presence", [coverage("c1", 0.3), coverage("c2", 0.2), coverage("c3", 0.01)])
    run(tables, 2, "human_presence", [coverage("c1", 0.31), coverage("c3", 0.01), coverage("c9", 0.5),
                                       dropped("c2", "people_count=7 > 5", item_kind="clip", metric="people_count",
                                               value=7.0, threshold=5.0)])
    got = diff(in_memory_warehouse(tmp_path / "tables"), PARTITION).changes
    assert got[["item_id", "change"]].values.tolist() == [["c1", "value"], ["c2", "verdict"], ["c9", "added"]]


def test_no_history_kept_means_nothing_to_compare(tables, tmp_path):
    run(tables, 1, "human_presence", [coverage("c1", 0.3)], keep=0)
    run(tables, 2, "human_presence", [coverage("c1", 0.05)], keep=0)
    assert not (tmp_path / "tables" / "ledger_history").exists()
    with pytest.raises(ValueError, match="only one run"):
        diff(in_memory_warehouse(tmp_path / "tables"), PARTITION)
