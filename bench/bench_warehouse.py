"""Does a step's warehouse refresh stay flat as the history grows (issue 17, item 5)?

Synthetic homes of 10, 100 and 1,000 source partitions: each partition has ledger files for
`--stages` stages of `--rows` rows (written as the stage factory writes them, with the per-partition
count files beside them) and one ordinary table. At each size we time what a step does after
writing its files: one more partition lands, then the warehouse is refreshed. `current` is
`refresh_warehouse` (views made once, the funnel a view over the count files); `baseline` is the
approach before it, in the same run on the same files (every view re-made and the `funnel` table
rebuilt from the whole ledger). We also time a funnel query on the refreshed file (what a reader
pays, once, instead of every step). Results: bench/results/warehouse.json.

Run: .venv/bin/python bench/bench_warehouse.py [--sizes 10 100 1000] [--rows 500] [--stages 4] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import write_result  # noqa: E402
from haic_platform.ledger import write_ledger  # noqa: E402
from haic_core.sql_files import load_sql, quote_literal  # noqa: E402
from haic_resources.storage.object_store import LocalObjectStore  # noqa: E402
from haic_resources.storage.tables import TableStore  # noqa: E402
from haic_resources.storage.warehouse import refresh_warehouse, table_glob, write_aside  # noqa: E402

STAGES = ["raw_metadata", "metadata_filtered", "videos", "clips", "human_presence", "pose_tracks", "action_filtered"]
# The funnel as it was computed before: a table rebuilt from the whole ledger at every refresh.
OLD_FUNNEL = """
SELECT l.source, l.stage,
       count(*) FILTER (WHERE l.verdict = 'kept') AS kept, count(*) FILTER (WHERE l.verdict = 'dropped') AS dropped,
       count(*) FILTER (WHERE l.verdict = 'error') AS error, count(*) AS total
FROM ledger AS l LEFT JOIN stage_order AS o USING (stage)
GROUP BY l.source, l.stage, o.position ORDER BY l.source, coalesce(o.position, 999), l.stage
"""


def ledger_frame(partition: str, stage: str, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    verdicts = rng.choice(["kept", "dropped", "error"], size=rows, p=[0.5, 0.45, 0.05])
    return pd.DataFrame({
        "item_id": [f"{partition}:{i}" for i in range(rows)], "parent_id": None, "item_kind": "video",
        "source": partition.split("__")[0], "partition": partition, "stage": stage, "verdict": verdicts,
        "reason": "synthetic", "metric": "m", "value": rng.random(rows), "threshold": 0.5, "detail": None,
        "config_hash": "c", "code_version": "1", "run_id": "r", "decided_at": pd.Timestamp("2026-01-01", tz="UTC")})


def land(tables: TableStore, index: int, stages: list[str], rows: int, rng: np.random.Generator) -> None:
    partition = f"synthetic__shard_{index:05d}.csv"
    for stage in stages:
        write_ledger(tables, stage, partition, ledger_frame(partition, stage, rows, rng))
    tables.write("clips", partition, pd.DataFrame({"clip_id": [f"{partition}:c{i}" for i in range(20)],
                                                   "duration_s": rng.random(20) * 15}))


def baseline_refresh(path: Path, root: Path, stage_order: list[str]) -> None:
    """The refresh before issue 17: every view re-made, the funnel table rebuilt from the ledger."""
    with write_aside(path) as conn:
        conn.execute(load_sql("create_stage_order"))
        conn.executemany("INSERT INTO stage_order VALUES (?, ?)", [(s, i) for i, s in enumerate(stage_order)])
        for view in ("ledger", "clips"):
            conn.execute(load_sql("create_table_view").format(view=view, files=quote_literal(table_glob(root, view))))
        conn.execute("CREATE OR REPLACE TABLE funnel AS " + OLD_FUNNEL)


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure(size: int, stages: list[str], rows: int, repeat: int, work: Path) -> dict:
    rng = np.random.default_rng(size)
    root = work / f"home_{size}" / "tables"
    tables = TableStore(LocalObjectStore(root), work / "mirror")
    for index in range(size):
        land(tables, index, stages, rows, rng)
    current_db, baseline_db = root.parent / "warehouse.duckdb", root.parent / "baseline.duckdb"
    refresh_warehouse(current_db, root, STAGES)  # the views exist from the first step on
    baseline_refresh(baseline_db, root, STAGES)
    current, baseline = [], []
    for step in range(repeat):
        land(tables, size + step, stages, rows, rng)  # a step wrote its partition's files
        current.append(timed(lambda: refresh_warehouse(current_db, root, STAGES)))
        baseline.append(timed(lambda: baseline_refresh(baseline_db, root, STAGES)))
    import duckdb

    with duckdb.connect(str(current_db), read_only=True) as conn:
        funnel_query_s = timed(lambda: conn.execute("SELECT * FROM funnel").fetchall())
        funnel = conn.execute("SELECT sum(total) FROM funnel").fetchone()[0]
    with duckdb.connect(str(baseline_db), read_only=True) as conn:
        assert conn.execute("SELECT sum(total) FROM funnel").fetchone()[0] == funnel  # the same funnel
    shutil.rmtree(root.parent)
    return {"partitions": size + repeat, "ledger_rows": (size + repeat) * len(stages) * rows,
            "current_refresh_s": round(statistics.median(current), 4),
            "baseline_refresh_s": round(statistics.median(baseline), 4),
            "speedup": round(statistics.median(baseline) / statistics.median(current), 1),
            "funnel_query_s": round(funnel_query_s, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--rows", type=int, default=500, help="ledger rows per partition and stage")
    parser.add_argument("--stages", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench_warehouse_") as tmp:
        for size in args.sizes:
            result = measure(size, STAGES[:args.stages], args.rows, args.repeat, Path(tmp))
            print(json.dumps(result), flush=True)
            results.append(result)
    flat = max(r["current_refresh_s"] for r in results) / min(r["current_refresh_s"] for r in results)
    summary = {"machine": platform.processor() or platform.machine(), "rows_per_partition_stage": args.rows,
               "stages": args.stages, "repeat": args.repeat, "results": results,
               "current_max_over_min": round(flat, 2)}
    out = write_result("warehouse", summary)
    print(f"current refresh, largest / smallest over sizes: {flat:.2f}x; written {out}")


if __name__ == "__main__":
    main()
