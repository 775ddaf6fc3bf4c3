"""A person's open DuckDB session on $HAIC_HOME/warehouse.duckdb (as the runbook suggests) never
blocks or fails a run: writers build the file aside and swap it in; readers read."""

from __future__ import annotations

import subprocess
import sys
import time

import pandas as pd
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_resources.storage.warehouse import read_only_connect
from haic_resources.storage.warehouse_resource import WarehouseResource
from tests.helpers import SAMPLE_PARTITION, dagster_instance, land_sample, ledger, run_partition, without_llm
from tests.timing import limit

SPINE = [AssetKey("raw_metadata"), AssetKey("metadata_filtered")]

HOLDER = r"""
import sys, duckdb
conn = duckdb.connect(sys.argv[1])          # read-write, exactly as `duckdb FILE` opens it
if sys.argv[2] == "write":                  # a session that also writes (and so has a WAL)
    conn.execute("CREATE TABLE my_notes AS SELECT 1 AS x")
print("ready", flush=True)
for line in sys.stdin:
    print(conn.execute(line).fetchone()[0], flush=True)
"""


def hold_open(path, mode: str = "read") -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), mode], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "ready"
    return holder


def ask(holder: subprocess.Popen, sql: str) -> str:
    holder.stdin.write(sql + "\n")
    holder.stdin.flush()
    return holder.stdout.readline().strip()


def test_a_run_succeeds_fast_while_another_process_holds_the_warehouse_open(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    land_sample(home)
    home.mkdir(exist_ok=True)
    holder = hold_open(home / "warehouse.duckdb")
    try:
        defs = build_definitions()
        with dagster_instance(home) as instance:
            started = time.monotonic()
            result = run_partition(defs, instance, SAMPLE_PARTITION, selection=SPINE)
            took = time.monotonic() - started
            assert result.success
        assert took < limit(60), f"the run waited {took:.0f}s for the reader's lock"
        # The reader's session still answers, on the file it opened.
        assert ask(holder, "SELECT count(*) FROM duckdb_tables()") == "0"
        # The ledger holds this run's rows, exactly the sample's decisions.
        book = ledger(home)
        assert set(book["run_id"]) == {result.run_id}
        assert sorted(book.loc[book["stage"] == "metadata_filtered", "verdict"]) == ["dropped", "dropped",
                                                                                     "kept", "kept"]
        # A fresh read-only session (the runbook's way) sees the views of the run, while the
        # first session is still open, and does not stop the next refresh either.
        with read_only_connect(home / "warehouse.duckdb") as reader:
            seen = reader.execute("SELECT stage, verdict, count(*) AS n FROM ledger GROUP BY ALL ORDER BY ALL").df()
            expected = (book.groupby(["stage", "verdict"]).size().reset_index(name="n")
                        .sort_values(["stage", "verdict"]).reset_index(drop=True))
            pd.testing.assert_frame_equal(seen, expected, check_dtype=False)
            started = time.monotonic()
            views = defs.resources["warehouse"].refresh(home / "tables")
            assert "ledger" in views and time.monotonic() - started < limit(10)
        assert ask(holder, "SELECT 42") == "42"
    finally:
        holder.stdin.close()
        holder.wait(timeout=limit(10))


def test_a_session_with_unsaved_writes_defers_the_refresh_and_fails_nothing(tmp_path, monkeypatch, caplog):
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    land_sample(home)
    holder = hold_open(home / "warehouse.duckdb", "write")
    try:
        defs = build_definitions()
        with dagster_instance(home) as instance:
            started = time.monotonic()
            result = run_partition(defs, instance, SAMPLE_PARTITION, selection=SPINE)
            assert result.success and time.monotonic() - started < limit(60)
        assert set(ledger(home)["run_id"]) == {result.run_id}
        assert ask(holder, "SELECT count(*) FROM my_notes") == "1"  # the person's work is intact
    finally:
        holder.stdin.close()
        holder.wait(timeout=limit(10))
    logs = "\n".join(str(e) for e in instance_logs(home, result.run_id))
    assert "not swapped: another session has unsaved writes" in logs or "not swapped" in caplog.text
    # Once the session is closed (its writes saved), the next refresh swaps in the views.
    assert "ledger" in defs.resources["warehouse"].refresh(home / "tables")
    with read_only_connect(home / "warehouse.duckdb") as reader:
        assert reader.execute("SELECT count(*) FROM ledger").fetchone()[0] == len(ledger(home))


def instance_logs(home, run_id):
    with dagster_instance(home) as instance:
        return [e.message or "" for e in instance.all_logs(run_id)]


def test_tables_written_through_the_warehouse_survive_a_refresh(tmp_path):
    warehouse = WarehouseResource(database=str(tmp_path / "w.duckdb"))
    (tmp_path / "tables" / "ledger" / "s").mkdir(parents=True)
    pd.DataFrame({"source": ["x"], "stage": ["s"], "item_id": ["a"], "item_kind": ["clip"], "verdict": ["kept"]}).to_parquet(
        tmp_path / "tables" / "ledger" / "s" / "p.parquet")
    with warehouse.connect() as conn:  # e.g. dataset_statistics' stats_* tables
        conn.execute("CREATE TABLE stats_demo AS SELECT 7 AS n")
    holder = hold_open(tmp_path / "w.duckdb")
    try:
        # the ledger, and the per-partition counts a ledger from before them gets once
        assert warehouse.refresh(tmp_path / "tables") == ["ledger", "ledger_counts"]
    finally:
        holder.stdin.close()
        holder.wait(timeout=limit(10))
    with read_only_connect(tmp_path / "w.duckdb") as conn:
        assert conn.execute("SELECT n FROM stats_demo").fetchone() == (7,)
        assert conn.execute("SELECT item_id FROM ledger").fetchall() == [("a",)]
        assert conn.execute("SELECT * FROM funnel").fetchall() == [("x", "s", "clip", 1, 0, 0, 1, 0)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tables", "w.duckdb", "w.duckdb.writer.lock"]
