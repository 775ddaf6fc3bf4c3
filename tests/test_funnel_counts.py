"""`haic funnel` sums the per-partition count files when every ledger file has its own, and falls back to
the ledger rows when one is missing or older: the same table either way."""

from __future__ import annotations

import pandas as pd

from haic_core.decisions import dropped, kept
from haic_core.ledger import ledger_rows
from haic_core.pipeline_order import PIPELINE_STAGES
from haic_platform.ledger import write_ledger
from haic_resources.storage.object_store import LocalObjectStore
from haic_resources.storage.tables import TableStore
from haic_resources.storage.warehouse import funnel, in_memory_warehouse
from haic_core.sql_files import load_sql


def home(tmp_path) -> TableStore:
    tables = TableStore(LocalObjectStore(tmp_path / "tables"), tmp_path / "cache")
    for partition, n in (("web__a.csv", 3), ("web__b.csv", 2)):
        videos = [kept(f"web:{partition}-{i}", item_kind="video") for i in range(n)] + [
            dropped(f"web:{partition}-x", "low resolution", item_kind="video")]
        write_ledger(tables, "videos", partition, ledger_rows(videos, stage="videos", partition=partition,
                                                              config_hash="h", code_version="v", run_id="r"))
    clips = [kept("web:web__a.csv-0-c0", item_kind="clip", parent_id="web:web__a.csv-0")]
    write_ledger(tables, "clips", "web__a.csv", ledger_rows(clips, stage="clips", partition="web__a.csv",
                                                             config_hash="h", code_version="v", run_id="r"))
    return tables


def test_the_count_files_give_the_ledger_rows_funnel(tmp_path):
    root = home(tmp_path).local_root()
    from_counts = funnel(root, PIPELINE_STAGES)
    from_rows = in_memory_warehouse(root, PIPELINE_STAGES).execute(load_sql("funnel")).df()
    pd.testing.assert_frame_equal(from_counts, from_rows)
    assert from_counts[["stage", "item_kind", "kept", "dropped", "total"]].values.tolist() == [
        ["videos", "video", 5, 2, 7], ["clips", "clip", 1, 0, 1]]


def test_a_missing_count_file_falls_back_to_the_ledger_rows(tmp_path):
    root = home(tmp_path).local_root()
    (root / "ledger_counts" / "videos" / "web__b.csv.parquet").unlink()
    assert funnel(root, PIPELINE_STAGES)[["stage", "kept", "total"]].values.tolist() == [
        ["videos", 5, 7], ["clips", 1, 1]]


def test_no_ledger_is_none(tmp_path):
    assert funnel(tmp_path / "tables") is None


def test_a_count_file_from_before_kinds_falls_back_to_the_ledger_rows(tmp_path):
    root = home(tmp_path).local_root()
    older = root / "ledger_counts" / "videos" / "web__b.csv.parquet"
    pd.read_parquet(older).drop(columns="item_kind").to_parquet(older)
    assert funnel(root, PIPELINE_STAGES)[["stage", "item_kind", "kept", "total"]].values.tolist() == [
        ["videos", "video", 5, 7], ["clips", "clip", 1, 1]]
