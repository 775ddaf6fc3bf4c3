"""The funnel is a sum of per-partition counts: a step's refresh never re-reads the ledger's history,
and `haic funnel` prints what it printed when it counted the whole ledger."""

from __future__ import annotations

import os
import subprocess
import sys

import duckdb
import pandas as pd

from haic_platform.ledger import write_ledger
from haic_resources.storage.object_store import LocalObjectStore
from haic_resources.storage.tables import TableStore
from haic_resources.storage.warehouse import in_memory_warehouse, read_only_connect, refresh_warehouse
from tests.helpers import REPO_ROOT
from tests.timing import limit

ORDER = ["raw_metadata", "metadata_filtered", "videos"]


def rows(partition: str, stage: str, verdicts: str, kind: str = "video") -> pd.DataFrame:
    """Ledger rows, one per letter: k kept, d dropped, e error, p pending (in an LLM batch job)."""
    names = {"k": "kept", "d": "dropped", "e": "error", "p": "pending"}
    return pd.DataFrame({"item_id": [f"{partition}:{kind}{i}" for i in range(len(verdicts))], "item_kind": kind,
                         "source": partition.split("__")[0], "partition": partition, "stage": stage,
                         "verdict": [names[v] for v in verdicts], "reason": "r"})


def land(tables: TableStore) -> None:
    write_ledger(tables, "raw_metadata", "webvid__a.csv", rows("webvid__a.csv", "raw_metadata", "kkkd"))
    write_ledger(tables, "metadata_filtered", "webvid__a.csv", rows("webvid__a.csv", "metadata_filtered", "kdd"))
    write_ledger(tables, "raw_metadata", "webvid__b.csv", rows("webvid__b.csv", "raw_metadata", "kke"))
    write_ledger(tables, "raw_metadata", "omega__c.parquet", rows("omega__c.parquet", "raw_metadata", "d"))


EXPECTED = [("omega", "raw_metadata", "video", 0, 1, 0, 1, 0),
            ("webvid", "raw_metadata", "video", 5, 1, 1, 7, 0),
            ("webvid", "metadata_filtered", "video", 1, 2, 0, 3, 0)]


def funnel(conn) -> list[tuple]:
    return [tuple(r) for r in conn.execute("SELECT * FROM funnel").fetchall()]


def test_the_funnel_sums_the_count_files_and_equals_the_count_of_the_whole_ledger(tmp_path):
    root = tmp_path / "tables"
    tables = TableStore(LocalObjectStore(root), tmp_path / "mirror")
    land(tables)
    assert sorted(p.relative_to(root).as_posix() for p in (root / "ledger_counts").rglob("*.parquet")) == [
        "ledger_counts/metadata_filtered/webvid__a.csv.parquet", "ledger_counts/raw_metadata/omega__c.parquet.parquet",
        "ledger_counts/raw_metadata/webvid__a.csv.parquet", "ledger_counts/raw_metadata/webvid__b.csv.parquet"]
    refresh_warehouse(tmp_path / "w.duckdb", root, ORDER)
    with read_only_connect(tmp_path / "w.duckdb") as conn:
        assert funnel(conn) == EXPECTED
        assert conn.execute("SELECT table_type FROM information_schema.tables WHERE table_name = 'funnel'"
                            ).fetchone() == ("VIEW",)
    assert funnel(in_memory_warehouse(root, ORDER)) == EXPECTED  # the CLI's private connection: same rows


def test_a_refresh_reads_no_history_and_a_new_partition_needs_none(tmp_path):
    root = tmp_path / "tables"
    tables = TableStore(LocalObjectStore(root), tmp_path / "mirror")
    land(tables)
    database = tmp_path / "w.duckdb"
    refresh_warehouse(database, root, ORDER)
    # A partition lands after the refresh: the views read the files when queried.
    write_ledger(tables, "videos", "webvid__b.csv", rows("webvid__b.csv", "videos", "kd", "video"))
    with read_only_connect(database) as conn:
        assert funnel(conn) == EXPECTED + [("webvid", "videos", "video", 1, 1, 0, 2, 0)]
    # The next step's refresh does not open the history: an old ledger file that can no longer be
    # read (its counts still can) does not fail it, as re-making the views or the funnel would.
    (root / "ledger" / "raw_metadata" / "webvid__a.csv.parquet").write_bytes(b"not parquet")
    assert refresh_warehouse(database, root, ORDER) == ["ledger", "ledger_counts"]
    with read_only_connect(database) as conn:
        assert funnel(conn) == EXPECTED + [("webvid", "videos", "video", 1, 1, 0, 2, 0)]


def test_a_home_from_before_the_count_files_gets_them_once_and_its_warehouse_a_funnel_view(tmp_path):
    root = tmp_path / "tables"
    for stage, partition, verdicts in [("raw_metadata", "webvid__a.csv", "kkkd"),
                                       ("metadata_filtered", "webvid__a.csv", "kdd"),
                                       ("raw_metadata", "webvid__b.csv", "kke"),
                                       ("raw_metadata", "omega__c.parquet", "d")]:
        (root / "ledger" / stage).mkdir(parents=True, exist_ok=True)
        rows(partition, stage, verdicts).to_parquet(root / "ledger" / stage / f"{partition}.parquet")
    database = tmp_path / "w.duckdb"
    with duckdb.connect(str(database)) as conn:  # the old warehouse: funnel was a table
        conn.execute("CREATE TABLE funnel AS SELECT 'stale' AS source")
    assert refresh_warehouse(database, root, ORDER) == ["ledger", "ledger_counts"]
    assert len(list((root / "ledger_counts").rglob("*.parquet"))) == 4
    with read_only_connect(database) as conn:
        assert funnel(conn) == EXPECTED


def test_haic_funnel_prints_the_same_table_as_before(tmp_path):
    home = tmp_path / "home"
    land(TableStore(LocalObjectStore(home / "tables"), tmp_path / "mirror"))
    env = dict(os.environ, HAIC_HOME=str(home))
    out = subprocess.run([sys.executable, "-m", "haic_cli", "funnel", "--source", "webvid"],
                         cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=limit(120))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1:] == [
        "source             stage item_kind  kept  dropped  error  total",
        "webvid      raw_metadata     video     5        1      1      7",
        "webvid metadata_filtered     video     1        2      0      3",
    ]


def test_items_waiting_in_a_batch_job_are_the_funnels_pending_column(tmp_path):
    root = tmp_path / "tables"
    tables = TableStore(LocalObjectStore(root), tmp_path / "mirror")
    land(tables)
    write_ledger(tables, "captions", "webvid__a.csv", rows("webvid__a.csv", "captions", "kppe", "clip"))
    assert funnel(in_memory_warehouse(root, [*ORDER, "captions"]))[-1] == ("webvid", "captions", "clip", 1, 0, 1, 4, 2)


def test_a_warehouse_made_before_the_pending_column_gets_the_new_funnel_on_its_next_refresh(tmp_path):
    """A warehouse file outlives upgrades: one whose funnel view was made from older SQL (here the
    funnel before its `pending` column, in a file with no record of what its views were made from)
    gets the current view at the next step's refresh; an unchanged view is not remade."""
    root = tmp_path / "tables"
    tables = TableStore(LocalObjectStore(root), tmp_path / "mirror")
    land(tables)
    database = tmp_path / "w.duckdb"
    refresh_warehouse(database, root, ORDER)
    with duckdb.connect(str(database)) as conn:  # as a warehouse from before this change was
        conn.execute("DROP TABLE warehouse_view_versions")
        conn.execute("CREATE OR REPLACE VIEW funnel AS SELECT source, stage, sum(kept) AS kept, sum(dropped) AS dropped,"
                     " sum(error) AS error, sum(total) AS total FROM ledger_counts GROUP BY ALL")
    with read_only_connect(database) as conn:
        assert "pending" not in [c[0] for c in conn.execute("DESCRIBE funnel").fetchall()]
    refresh_warehouse(database, root, ORDER)
    with read_only_connect(database) as conn:
        assert funnel(conn) == EXPECTED
        made = conn.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'funnel'").fetchone()
    refresh_warehouse(database, root, ORDER)  # nothing changed: the same view, not remade
    with read_only_connect(database) as conn:
        assert conn.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'funnel'").fetchone() == made
        assert conn.execute("SELECT count(*) FROM warehouse_view_versions").fetchone() == (1,)


def test_a_stage_deciding_on_videos_and_qa_has_a_row_for_each_never_their_sum(tmp_path):
    root = tmp_path / "tables"
    tables = TableStore(LocalObjectStore(root), tmp_path / "mirror")
    split = pd.concat([rows("haicbench__all", "haicbench_split", "kkd", "video"),
                       rows("haicbench__all", "haicbench_split", "kkkkdd", "qa")])
    write_ledger(tables, "haicbench_split", "haicbench__all", split)
    refresh_warehouse(tmp_path / "w.duckdb", root, ["haicbench_split"])
    with read_only_connect(tmp_path / "w.duckdb") as conn:
        assert funnel(conn) == [("haicbench", "haicbench_split", "qa", 4, 2, 0, 6, 0),
                                ("haicbench", "haicbench_split", "video", 2, 1, 0, 3, 0)]
    assert funnel(in_memory_warehouse(root, ["haicbench_split"])) == funnel(read_only_connect(tmp_path / "w.duckdb"))


def test_count_files_from_before_the_kinds_are_remade_once_with_the_funnel(tmp_path):
    """A home and warehouse from before the funnel counted kinds apart: count files without
    `item_kind` and a funnel view made from the old SQL. The next refresh remakes both from the
    ledger files; the refresh after it rewrites nothing."""
    root = tmp_path / "tables"
    tables = TableStore(LocalObjectStore(root), tmp_path / "mirror")
    land(tables)
    database = tmp_path / "w.duckdb"
    refresh_warehouse(database, root, ORDER)
    old_counts = sorted((root / "ledger_counts").rglob("*.parquet"))
    for path in old_counts:  # as the count files were written before
        pd.read_parquet(path).drop(columns="item_kind").to_parquet(path, index=False)
    with duckdb.connect(str(database)) as conn:
        conn.execute("UPDATE warehouse_view_versions SET sql_sha256 = 'an older funnel.sql'")
        conn.execute("CREATE OR REPLACE VIEW funnel AS SELECT source, stage, sum(kept) AS kept FROM ledger_counts "
                     "GROUP BY ALL")
    refresh_warehouse(database, root, ORDER)
    with read_only_connect(database) as conn:
        assert funnel(conn) == EXPECTED
    assert all("item_kind" in pd.read_parquet(path).columns for path in old_counts)
    stamps = {path: path.stat().st_mtime_ns for path in old_counts}
    refresh_warehouse(database, root, ORDER)
    assert {path: path.stat().st_mtime_ns for path in old_counts} == stamps
