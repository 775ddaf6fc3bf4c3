"""How long `haic whatif` takes on a ledger of 1,000,000 rows.

Writes a synthetic ledger shaped like the accumulation's (per partition: raw_metadata and
metadata_filtered rows per video, videos, clips, human_presence with 16 per-frame people counts and
coverages in `detail`, pose_tracks, action_filtered with both motion values and per-track pairs),
as Parquet files the way the stages write them (tables/ledger/<stage>/<partition>.parquet), then
re-decides it with new thresholds for clips, human_presence and action_filtered, as `haic whatif`
does (a private in-memory warehouse over the files, the SQL of sql/whatif_*.sql). Baseline in the
same run: the ledger's funnel computed from the same rows (sql/ledger_counts.sql summed, which is
what `haic funnel` runs on a private connection). Median of --repeats.

    uv run python bench/bench_whatif.py [--rows 1000000] [--partitions 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from haic_core.ledger import LEDGER_COLUMNS  # noqa: E402
from haic_core.sql_files import load_sql  # noqa: E402
from haic_core.whatif import parse_assignments, plan  # noqa: E402
from haic_core.whatif_engine import what_if  # noqa: E402
from haic_resources.storage.warehouse import in_memory_warehouse  # noqa: E402

# Rows per video at each stage (a WebVid-like shard: most videos reach clips; few clips pass presence).
SHAPE = {"raw_metadata": 1.0, "metadata_filtered": 1.0, "videos": 0.95, "clips": 1.6, "human_presence": 1.3,
         "pose_tracks": 0.1, "action_filtered": 0.1}
SETTINGS = ["clips.min_length_s=4", "clips.max_clips_per_video=3", "human_presence.max_people=8",
            "human_presence.min_coverage=0.08", "action_filtered.motion_l1_min=0.12"]
EFFECTIVE = {"clips": {"min_length_s": 4.0, "max_length_s": 20.0, "max_clips_per_video": 3},
             "human_presence": {"min_people": 1, "max_people": 8, "min_coverage": 0.08},
             "action_filtered": {"motion_l1_min": 0.12, "affine_residual_min": 0.0016}}


def stage_rows(stage: str, partition: str, videos: int, rng: np.random.Generator) -> pd.DataFrame:
    n = max(1, int(round(videos * SHAPE[stage])))
    video = rng.integers(0, videos, size=n)
    clip_ids = [f"{partition}:{v}-{k:010x}" for k, v in enumerate(video)]
    video_ids = [f"{partition}:{v}" for v in video]
    base = {"source": partition.split("__")[0], "partition": partition, "stage": stage, "config_hash": "c",
            "code_version": "1", "run_id": "bench", "decided_at": pd.Timestamp("2026-12-07", tz="UTC")}
    if stage in ("raw_metadata", "metadata_filtered", "videos"):
        ids = [f"{partition}:{k}" for k in range(n)]
        width = rng.choice([596, 426, 1280], size=n)
        details = [json.dumps({"width": int(w), "height": int(w * 9 // 16), "has_verb": True}) for w in width]
        frame = pd.DataFrame({"item_id": ids, "parent_id": None, "item_kind": "video", "verdict": "kept",
                              "reason": "parsed", "reason_code": "kept", "metric": "short_side_px",
                              "value": (width * 9 // 16).astype(float), "threshold": 240.0, "detail": details})
    elif stage == "clips":
        length = rng.uniform(1, 25, size=n).round(3)
        start = rng.uniform(0, 40, size=n).round(3)
        verdict = np.where((length >= 5) & (length <= 20), "kept", "dropped")
        details = [json.dumps({"start_s": float(s), "end_s": float(s + ln), "min_length_s": 5.0, "max_length_s": 20.0})
                   for s, ln in zip(start, length)]
        frame = pd.DataFrame({"item_id": clip_ids, "parent_id": video_ids, "item_kind": "clip", "verdict": verdict,
                              "reason": "scene", "reason_code": np.where(verdict == "kept", "kept", "too_short"),
                              "metric": "clip_length_s", "value": length, "threshold": 5.0, "detail": details})
    elif stage == "human_presence":
        counts = np.clip(rng.integers(0, 7, size=(n, 1)) + rng.integers(-1, 2, size=(n, 16)), 0, None)
        coverage = rng.uniform(0.0, 0.4, size=(n, 16)).round(6)
        least, fewest, most = coverage.min(axis=1), counts.min(axis=1), counts.max(axis=1)
        kept = (fewest >= 1) & (most <= 5) & (least >= 0.1)
        details = [json.dumps({"people_per_frame": c.tolist(), "coverage_per_frame": v.tolist(), "min_people": 1,
                               "max_people": 5, "min_coverage": 0.1}) for c, v in zip(counts, coverage)]
        frame = pd.DataFrame({"item_id": clip_ids, "parent_id": video_ids, "item_kind": "clip",
                              "verdict": np.where(kept, "kept", "dropped"), "reason": "presence",
                              "reason_code": np.where(kept, "kept", "low_box_coverage"), "metric": "box_coverage",
                              "value": least, "threshold": 0.1, "detail": details})
    else:
        l1, residual = rng.uniform(0, 0.5, size=n), rng.uniform(0, 0.02, size=n)
        details = [json.dumps({"keypoint_l1": round(a, 6), "affine_residual": round(b, 6),
                               "tracks": [{"track_id": 0, "pair_l1": [round(a, 6)] * 8,
                                           "pair_residual": [round(b, 6)] * 8,
                                           "valid_keypoints": [17] * 8}]}) for a, b in zip(l1, residual)]
        kept = (l1 > 0.085) & (residual > 0.0016)
        frame = pd.DataFrame({"item_id": clip_ids, "parent_id": video_ids, "item_kind": "clip",
                              "verdict": np.where(kept, "kept", "dropped"), "reason": "motion",
                              "reason_code": np.where(kept, "kept", "static_keypoints"),
                              "metric": np.where(kept, "affine_residual", "keypoint_l1"),
                              "value": np.where(kept, residual, l1), "threshold": 0.085, "detail": details})
    return frame.assign(**base)[list(LEDGER_COLUMNS)].astype(LEDGER_COLUMNS)


def write_ledger(root: Path, rows: int, partitions: int, seed: int = 0) -> int:
    rng = np.random.default_rng(seed)
    videos = int(rows / sum(SHAPE.values()) / partitions)
    written = 0
    for p in range(partitions):
        partition = f"webvid__part-{p:04d}.csv"
        for stage in SHAPE:
            frame = stage_rows(stage, partition, videos, rng)
            folder = root / "ledger" / stage
            folder.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(folder / f"{partition}.parquet", index=False, compression="zstd")
            written += len(frame)
    return written


def timed(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tables"
        started = time.perf_counter()
        rows = write_ledger(root, args.rows, args.partitions)
        print(f"synthetic ledger: {rows:,} rows in {args.partitions} partitions ({time.perf_counter() - started:.1f} s "
              "to write)")
        whatif_plan = plan(parse_assignments(SETTINGS), EFFECTIVE)

        def funnel():
            conn = in_memory_warehouse(root)
            return conn.execute(load_sql("funnel")).df()

        def whatif():
            conn = in_memory_warehouse(root)
            return what_if(conn, whatif_plan, tables_root=root)

        funnel_s, _ = timed(funnel, args.repeats)
        whatif_s, result = timed(whatif, args.repeats)
        flips = len(result.flips)
        unknown = int(result.unknown["items"].sum()) if len(result.unknown) else 0
        print(json.dumps({"rows": rows, "partitions": args.partitions, "settings": SETTINGS,
                          "whatif_s": round(whatif_s, 2), "funnel_s": round(funnel_s, 2),
                          "whatif_over_funnel": round(whatif_s / funnel_s, 2), "flips": flips,
                          "unknown": unknown, "repeats": args.repeats}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
