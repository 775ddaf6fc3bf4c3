"""CPU core-seconds per video of the CPU path (the reference) on the WebVid-shaped set: the scene split
(`scene_detect.split_into_clips`, PyAV + PySceneDetect) and each kept clip's people (`clip_people.sample_people`,
the CPU reader + the onnx backend, ONNX Runtime), serially in this process so that `os.times` counts all of it.
The figure `bench/webvid_shaped_figures.json` gives for the CPU path.

    OMP_NUM_THREADS=1 python bench/cpu_path_core_seconds.py --webvid /tmp/webvid_shaped --models ../shared/models
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from haic_resources.pose.clip_people import PeopleTask, sample_people  # noqa: E402
from haic_resources.pose.settings import PoseSettings, make_estimator  # noqa: E402
from haic_resources.video.scene_detect import SplitTask, split_into_clips  # noqa: E402


def core_seconds() -> float:
    t = os.times()
    return t.user + t.system


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--webvid", type=Path, required=True)
    ap.add_argument("--models", type=Path, required=True)
    args = ap.parse_args()
    videos = sorted(str(p) for p in args.webvid.glob("webvid_*.mp4"))
    pose = PoseSettings(cache_dir="/tmp/haic_models", backend="onnx", detector_model=str(args.models / "yolox_nano.onnx"),
                        pose_model=str(args.models / "rtmpose_t_random.onnx"), device="cpu", input_long_side=416)
    make_estimator(pose)  # model load outside the count
    start, wall, clips, split = core_seconds(), time.perf_counter(), 0, 0.0
    for k, path in enumerate(videos):
        task = SplitTask(video_id=f"v{k}", path=path, detector="content", threshold=None, min_scene_len=15, frame_skip=0,
                         downscale=None, min_length_s=5.0, max_length_s=20.0, decode_threads=1, max_clips=10)
        before = core_seconds()
        result = split_into_clips(task)
        split += core_seconds() - before
        kept = {d.item_id for d in result["decisions"] if d.verdict == "kept"}
        for clip in result["clips"]:
            if clip["clip_id"] in kept:
                sample_people(PeopleTask(clip["clip_id"], path, clip["start_s"], clip["end_s"], pose))
                clips += 1
    total = core_seconds() - start
    print(json.dumps({"videos": len(videos), "clips": clips, "wall_s": round(time.perf_counter() - wall, 1),
                      "core_s_per_video": round(total / len(videos), 2),
                      "split_core_s_per_video": round(split / len(videos), 2)}))


if __name__ == "__main__":
    main()
