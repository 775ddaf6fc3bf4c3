"""The ledger's index (haic_resources/storage/ledger_index.py): every ledger write leaves a delta, a merge
folds the deltas into the sorted main file once, and a home whose ledger predates the index is indexed
once, at its first merge or its first `haic why`, never again after its deltas were merged."""

from __future__ import annotations

import pandas as pd

from haic_core.decisions import dropped, kept
from haic_core.ledger import ledger_rows
from haic_platform.ledger import write_ledger
from haic_resources.storage.ledger_index import BUILT_MARKER, DELTAS, ensure_built, merge, partitions_of
from haic_resources.storage.object_store import LocalObjectStore
from haic_resources.storage.tables import TableStore


def store(tmp_path) -> TableStore:
    return TableStore(LocalObjectStore(tmp_path / "tables"), tmp_path / "cache")


def clip_rows(partition: str, video: str) -> pd.DataFrame:
    return ledger_rows([kept(f"{video}-c0", item_kind="clip", parent_id=video),
                        dropped(f"{video}-c1", "too short", item_kind="clip", parent_id=video)],
                       stage="clips", partition=partition, config_hash="h", code_version="v", run_id="r")


def deltas(tmp_path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "tables" / DELTAS).glob("*.parquet"))


def test_a_merge_folds_every_delta_once_and_marks_the_home_indexed(tmp_path):
    tables = store(tmp_path)
    for partition, video in (("s__a.csv", "s:1"), ("s__b.csv", "s:2"), ("s__c.csv", "s:1")):
        write_ledger(tables, "clips", partition, clip_rows(partition, video))
    root = tables.local_root()
    assert deltas(tmp_path) == ["clips__s__a.csv.parquet", "clips__s__b.csv.parquet", "clips__s__c.csv.parquet"]
    before = partitions_of(root, ["s:1", "s:2-c1"])
    assert merge(tables, root) == 3
    assert deltas(tmp_path) == [] and tables.store.exists(BUILT_MARKER)
    assert partitions_of(root, ["s:1", "s:2-c1"]) == before == {"s:1": {"s__a.csv", "s__c.csv"}, "s:2-c1": {"s__b.csv"}}
    # The deltas are gone because they were merged: the index is complete, nothing is read again.
    main = tmp_path / "tables" / "ledger_index" / "main.parquet"
    written = main.stat().st_mtime_ns
    assert ensure_built(tables, root) == 0
    assert main.stat().st_mtime_ns == written and deltas(tmp_path) == []


def test_a_ledger_written_before_the_index_is_indexed_at_the_first_merge(tmp_path):
    tables = store(tmp_path)
    old = tmp_path / "tables" / "ledger" / "clips" / "s__old.csv.parquet"
    old.parent.mkdir(parents=True)
    clip_rows("s__old.csv", "s:9").drop(columns="parent_id").to_parquet(old)  # no delta, no parent column
    write_ledger(tables, "clips", "s__new.csv", clip_rows("s__new.csv", "s:1"))
    root = tables.local_root()
    assert partitions_of(root, ["s:9-c0"]) == {}  # not indexed yet
    assert merge(tables, root) == 2  # the new file's delta and the one made for the old file
    assert partitions_of(root, ["s:9-c0", "s:1"]) == {"s:9-c0": {"s__old.csv"}, "s:1": {"s__new.csv"}}
    assert ensure_built(tables, root) == 0


def test_why_on_a_home_never_merged_indexes_what_has_no_delta(tmp_path):
    tables = store(tmp_path)
    old = tmp_path / "tables" / "ledger" / "clips" / "s__old.csv.parquet"
    old.parent.mkdir(parents=True)
    clip_rows("s__old.csv", "s:9").to_parquet(old)
    write_ledger(tables, "clips", "s__new.csv", clip_rows("s__new.csv", "s:1"))
    assert ensure_built(tables, tables.local_root()) == 1  # the old file alone
    assert partitions_of(tables.local_root(), ["s:9", "s:1-c1"]) == {"s:9": {"s__old.csv"}, "s:1-c1": {"s__new.csv"}}
    assert ensure_built(tables, tables.local_root()) == 0
