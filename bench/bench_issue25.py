"""Issue 25 on one GPU in one call: the repeatable decoder, cuts against `scenedetect.detect()`, the NVDEC limit,
and both workloads side by side. Each phase is written to `--out` (JSON) as it finishes; a short table last.

    python bench/bench_issue25.py --media shared/media --webvid webvid_shaped --models shared/models \
        --out $OUT/issue25.json --phases checks,limit,b,a

Phases: checks (repeatability of each GPU decoder candidate in threads, NVDEC == CPU byte for byte, the
instants reader against the CPU reader, torchcodec if it imports), cuts (every shared and WebVid-shaped video),
limit (NVDEC frames/s, 1…16 decoders, 1080p/720p/336p H.264), a (human filters, 240 clips), b (video to verdict,
WebVid-shaped, GPU path vs the CPU path on every core).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_gpu_human_filters import clip_list  # noqa: E402
import issue25_checks as checks  # noqa: E402
import issue25_workloads as workloads  # noqa: E402
from measure import bench_parser  # noqa: E402


def main() -> None:
    ap = bench_parser(__doc__, "media", "webvid", "models", "out")
    ap.add_argument("--phases", default="checks,cuts,limit,b,a")
    ap.add_argument("--threads", type=int, default=12)
    ap.add_argument("--clips", type=int, default=240)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=8, help="workload b: each WebVid-shaped video this many times")
    ap.add_argument("--cpu-videos", type=int, default=32, help="workload b: videos the CPU path runs")
    ap.add_argument("--workers", type=int, default=0, help="CPU processes (0: every core)")
    ap.add_argument("--limit-seconds", type=float, default=2.0)
    args = ap.parse_args()
    import torch

    workers = args.workers or checks.cpu_count()
    out: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cores": workers,
                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}

    def save():
        args.out.write_text(json.dumps(out, indent=1, default=str))

    phases = args.phases.split(",")
    clips, names = clip_list(args.media, args.clips)
    unique = clips[:len(names)]
    webvid = sorted(str(p) for p in args.webvid.glob("webvid_*.mp4"))
    shared = sorted(str(p) for p in (args.media / "videos").iterdir())
    for phase in phases:
        t0 = time.perf_counter()
        try:
            if phase == "checks":
                out["torchcodec"] = checks.torchcodec_probe(webvid[:4])
                save()
                out["repeatability"] = checks.repeatability(unique + [c for c in (workloads.ClipWindow(
                    Path(p).name, p, 0.5, 17.5) for p in webvid[:4])], args.threads, 4)
                save()
                if workloads.HAVE_PYAV:
                    out["nvdec_equals_cpu"] = checks.nvdec_equals_cpu(webvid + [c.path for c in unique], unique,
                                                                       workers=workers)
            elif phase == "cuts":
                out["cuts"] = checks.cuts_against_detect(shared + webvid, workers)
            elif phase == "limit":
                files = {"1080p": str(args.webvid / "limit_1080p.mp4"), "720p": str(args.webvid / "limit_720p.mp4"),
                         "336p": webvid[0]}
                out["nvdec_limit"] = checks.nvdec_limit(files, seconds=args.limit_seconds)
            elif phase == "scale":
                out["pass_scaling"] = workloads.pass_scaling(webvid * 2)
            elif phase in ("a", "b"):
                models = out_models(args.models)
                if phase == "a":
                    out["workload_a"] = workloads.workload_a(clips, models, args.threads, min(14, workers), args.batch)
                else:
                    out["workload_b"] = workloads.workload_b(webvid, args.repeat, args.cpu_videos, models, args.threads,
                                                             workers, args.batch, args.models)
        except Exception:
            out[f"{phase}_failed"] = traceback.format_exc()[-2000:]
        out.setdefault("phase_seconds", {})[phase] = round(time.perf_counter() - t0, 1)
        save()
        print(f"phase {phase} done in {out['phase_seconds'][phase]} s", flush=True)
    print(summary(out))


_MODELS: dict = {}


def out_models(models_dir: Path) -> dict:
    from haic_resources.pose.batched import BatchedDetectorPose

    if not _MODELS:
        for half in (True, False):
            _MODELS[half] = BatchedDetectorPose(models_dir / "yolox_nano.onnx", models_dir / "rtmpose_t_random.onnx",
                                                device="cuda", engine="torch", half=half)
    return _MODELS


def summary(out: dict) -> str:
    lines = [f"GPU {out.get('gpu')}, {out.get('cores')} cores"]
    rep = out.get("repeatability", {})
    for name, row in rep.items():
        lines.append(f"repeatable {name}: {row.get('repeatable_files', row.get('failed', '')[-200:])} of {row.get('files')}")
    eq = out.get("nvdec_equals_cpu", {}).get("single_pass", {})
    if eq:
        lines.append("single pass NVDEC==CPU frames: " + str(sum(bool(v.get("kept_frames_equal")) for v in eq.values()))
                     + f"/{len(eq)}, scores: " + str(sum(bool(v.get("scores_equal")) for v in eq.values())))
    if "cuts" in out:
        lines.append(f"cuts: {out['cuts'].get('videos')} videos, not within one frame: "
                     f"{out['cuts'].get('cuts_not_within_one_frame')}")
    if "nvdec_limit" in out:
        lines.append(f"NVDEC limit frames/s: {json.dumps(out['nvdec_limit'])}")
    if "pass_scaling" in out:
        lines.append(f"pass scaling: {json.dumps(out['pass_scaling'])[:800]}")
    for key in ("workload_a", "workload_b"):
        for name, row in out.get(key, {}).items():
            if isinstance(row, dict) and ("clips_per_s" in row or "failed" in row):
                lines.append(f"{key} {name}: " + (json.dumps({k: row[k] for k in row if k in (
                    "clips_per_s", "videos_per_s", "frames_decoded_per_s", "kept", "clips", "gpu_util_mean",
                    "nvdec_util_mean", "files_with_two_verdicts")}) if "failed" not in row else row["failed"][-300:]))
    lines.append(f"phases: {out.get('phase_seconds')}")
    for k, v in out.items():
        if k.endswith("_failed"):
            lines.append(f"{k}: {v[-600:]}")
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
