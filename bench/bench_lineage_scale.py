"""Does `haic why` stay within 1 s and 300 MB at WebVid's 100 M ledger rows, and `haic funnel` within
2 s at 1,000 partitions (issue 24, item 4)?

Synthetic homes of P partitions of about 100,000 ledger rows each, over seven stages as a curation
writes them (raw_metadata and metadata_filtered: 20,000 videos; videos and clips: 15,000, the clips
children of videos; human_presence, pose_tracks, action_filtered: 10,000 clips), each file written
with its counts and its ledger-index delta as the stage factory writes them, then the index merged
as writers merge it. In the same run, on the same files:
- `why, index`: what `haic why` does now (haic_resources/storage/ledger_trail.py: the ledger index, then
  only the partitions it names);
- `why, scan`: what it did before (a view over every ledger file, the recursive walk over all of it);
  measured only up to --scan-max-partitions (it grows with the ledger: at 100 M rows it takes minutes);
- `funnel`: the funnel view over the per-partition count files;
- `haic why`, `haic funnel`: the whole commands in a fresh process (start-up, imports, the work).
Each measurement runs in a fresh process (the query's seconds after the imports, and the process's
peak RSS), --repeat times; the median is reported. Results: bench/results/lineage_scale.json.

Run: .venv/bin/python bench/bench_lineage_scale.py [--partitions 20 1000] [--rows 100000] [--home DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import write_result  # noqa: E402
from haic_platform.ledger import ledger_files  # noqa: E402
from haic_core.ledger import LEDGER_COLUMNS  # noqa: E402
from haic_resources.storage.ledger_index import merge  # noqa: E402
from haic_resources.storage.object_store import LocalObjectStore  # noqa: E402
from haic_resources.storage.tables import TableStore  # noqa: E402

# stage -> (share of the partition's rows, kind): videos first, then their clips
STAGES = {"raw_metadata": (0.2, "video"), "metadata_filtered": (0.2, "video"), "videos": (0.15, "video"),
          "clips": (0.15, "clip"), "human_presence": (0.1, "clip"), "pose_tracks": (0.1, "clip"),
          "action_filtered": (0.1, "clip")}

# One measurement in a fresh process: the query's seconds (after the imports, which every command
# pays alike) and the process's peak RSS.
WHY = """
import sys, resource, time
from pathlib import Path
root, item, mode = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path.insert(0, sys.argv[4])
from haic_core.sql_files import load_sql
from haic_resources.storage.ledger_trail import indexed_trail, trail_of
from haic_resources.storage.warehouse import funnel_rows, in_memory_warehouse
start = time.perf_counter()
if mode == "index":
    trail, _ = indexed_trail(root, item)
elif mode == "scan":
    trail = trail_of(in_memory_warehouse(root), item)
else:
    trail = funnel_rows(root, ())[1]  # what `haic funnel` reads: the count files, when all are there
elapsed = time.perf_counter() - start
print(len(trail), elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def ids(prefix: str, count: int) -> pa.Array:
    return pc.binary_join_element_wise(pa.scalar(prefix), pc.cast(pa.array(np.arange(count)), pa.string()), "")


def ledger_of(partition: str, stage: str, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    source = partition.split("__")[0]
    kind = STAGES[stage][1]
    videos = ids(f"{source}:{partition[-9:-4]}-", rows)
    item = videos if kind == "video" else pc.binary_join_element_wise(videos, pa.scalar("-c0"), "")
    frame = pd.DataFrame({
        "item_id": item.to_pandas(), "parent_id": None if kind == "video" else videos.to_pandas(),
        "item_kind": kind, "source": source, "partition": partition, "stage": stage,
        "verdict": rng.choice(["kept", "dropped", "error"], size=rows, p=[0.6, 0.37, 0.03]),
        "reason": "synthetic", "reason_code": "synthetic", "metric": "m", "value": rng.random(rows),
        "threshold": 0.5, "detail": None, "config_hash": "c", "code_version": "1", "run_id": "r",
        "decided_at": pd.Timestamp("2026-01-01", tz="UTC")})
    return frame.astype({k: v for k, v in LEDGER_COLUMNS.items() if k in frame})


def build(home: Path, partitions: int, rows: int) -> Path:
    root = home / "tables"
    done = root / f".built-{partitions}-{rows}"
    if done.exists():
        return root
    tables = TableStore(LocalObjectStore(root), home / "mirror")
    rng = np.random.default_rng(0)
    for p in range(partitions):
        partition = f"webvid__shard_{p:05d}.csv"
        for stage, (share, _) in STAGES.items():
            rows_of_stage = ledger_of(partition, stage, int(rows * share), rng)
            for (table, key), frame in ledger_files(tables, stage, partition, rows_of_stage, keep_history=0).items():
                tables.write(table, key, frame)
        if (p + 1) % 50 == 0:
            print(f"  {p + 1}/{partitions} partitions", flush=True)
    merge(tables, root)
    done.write_text("")
    return root


def measure(root: Path, item: str, mode: str, repeat: int) -> dict:
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", WHY, str(root), item, mode, str(REPO)], capture_output=True,
                             text=True, check=True).stdout.split()[-3:]  # its three numbers end the output (DuckDB may draw a bar before them)
        runs.append((int(out[0]), float(out[1]), int(out[2])))
    return {"rows": runs[0][0], "seconds": statistics.median(r[1] for r in runs),
            "peak_rss_mb": round(statistics.median(r[2] for r in runs) / 2**20, 1)}


def command(home: Path, args: list[str], repeat: int) -> dict:
    """`haic ARGS` (`why ITEM`, `funnel`) as a user runs it: wall seconds and peak RSS of the whole process."""
    import os

    # A fresh wrapper per run: its RUSAGE_CHILDREN peak is the command's alone.
    wrapper = ("import resource, subprocess, sys, time; start = time.perf_counter(); "
               "done = subprocess.run(sys.argv[1:], capture_output=True); assert done.returncode == 0, done.stderr; "
               "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", wrapper, sys.executable, "-m", "haic_cli", *args], cwd=REPO,
                             capture_output=True, text=True, check=True, env={**os.environ, "HAIC_HOME": str(home)})
        seconds, rss_kb = out.stdout.split()
        runs.append((float(seconds), int(rss_kb)))
    return {"seconds": round(statistics.median(r[0] for r in runs), 2),
            "peak_rss_mb": round(max(r[1] for r in runs) / 1024, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--partitions", type=int, nargs="+", default=[20, 1000])
    parser.add_argument("--rows", type=int, default=100_000, help="ledger rows per partition, over the 7 stages")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--scan-max-partitions", type=int, default=20)
    parser.add_argument("--home", type=Path, default=Path("/tmp/haic-bench-lineage"))
    args = parser.parse_args()
    results = {"machine": platform.platform(), "python": platform.python_version(), "sizes": []}
    for partitions in args.partitions:
        start = time.perf_counter()
        print(f"{partitions} partitions x {args.rows} rows: building (or reusing) the synthetic ledger", flush=True)
        root = build(args.home / f"p{partitions}", partitions, args.rows)
        built_s = time.perf_counter() - start
        item = f"webvid:{partitions // 2:05d}-{int(args.rows * 0.15) // 2}"  # a video with clips, mid-ledger
        size = {"partitions": partitions, "ledger_rows": partitions * args.rows, "build_s": round(built_s, 1),
                "why_index": measure(root, item, "index", args.repeat),
                "funnel": measure(root, item, "funnel", args.repeat)}
        size["haic_why_command"] = command(root.parent, ["why", item], args.repeat)
        size["haic_funnel_command"] = command(root.parent, ["funnel"], args.repeat)
        if partitions <= args.scan_max_partitions:
            size["why_scan"] = measure(root, item, "scan", args.repeat)
            size["scan_over_index"] = round(size["why_scan"]["seconds"] / size["why_index"]["seconds"], 1)
        print(json.dumps(size), flush=True)
        results["sizes"].append(size)
    print(f"written {write_result('lineage_scale', results)}")


if __name__ == "__main__":
    main()
