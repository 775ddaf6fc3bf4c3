"""GPU-seconds per candidate clip for presence + pose: the ONNX path (YOLOX-nano + RTMPose-t) on CUDA.

For `haic plan`'s GPU-hours. Per clip: the frames the presence and pose stages use (16 uniform
instants + 1 per second, merged) are decoded with OpenCV and resized to the model's long side (CPU,
timed apart), then `OnnxDetectorRTMPose(device="cuda").estimate(frames)` is timed (wall time of
the model step on one GPU, transfers included), after one warm-up clip. RTMPose-t has random
weights (real compute, meaningless keypoints), as in bench_human_filters. Runs with only numpy,
OpenCV and ONNX Runtime, from the repository root, on a machine whose ONNX Runtime has the CUDA
execution provider (`onnxruntime-gpu`; the plain `onnxruntime` wheel has none: the bench then runs
on CPU and exits 1). Its JSON goes to `bench_plan_inputs.py --gpu-results`.

    python3 bench/bench_plan_gpu.py --media DIR --models DIR --out gpu.json
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402

from bench.measure import bench_parser  # noqa: E402
from haic_core.accumulation.sampling import merge_timestamps, per_second_timestamps, uniform_timestamps  # noqa: E402
from haic_resources.pose.rtmpose_onnx import OnnxDetectorRTMPose  # noqa: E402

CLIPS = ("sam2_juggle_1p.mp4", "mmaction2_basketball_2p.mp4", "sam2_dog_1p.mp4", "mmaction2_demo_armwrestling.mp4")


def frames_at(path: Path, long_side: int) -> list:
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    duration = capture.get(cv2.CAP_PROP_FRAME_COUNT) / fps
    times = merge_timestamps(uniform_timestamps(0.0, duration, 16), per_second_timestamps(0.0, duration, 1.0))
    frames = []
    for t in times:
        capture.set(cv2.CAP_PROP_POS_MSEC, t * 1000)
        ok, bgr = capture.read()
        if not ok:
            continue
        scale = long_side / max(bgr.shape[:2])
        rgb = cv2.cvtColor(cv2.resize(bgr, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB)
        frames.append(rgb)
    capture.release()
    return frames


def main() -> int:
    import onnxruntime as ort

    parser = bench_parser(__doc__, "media", "models", "out")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    providers = ort.get_available_providers()
    print("ONNX Runtime", ort.__version__, providers)
    model = OnnxDetectorRTMPose(args.models / "yolox_nano.onnx", args.models / "rtmpose_t_random.onnx", device="cuda")
    rows = []
    for n, name in enumerate(CLIPS):
        t0 = time.process_time()
        frames = frames_at(args.media / "videos" / name, model.input_long_side)
        decode_cpu_s = time.process_time() - t0
        if n == 0:
            model.estimate(frames)  # warm-up: CUDA context, kernels
        best = min(_timed(model, frames) for _ in range(args.repeats))
        rows.append({"clip": name, "frames": len(frames), "model_gpu_wall_s": round(best, 4),
                     "decode_resize_cpu_s": round(decode_cpu_s, 4)})
        print(rows[-1])
    try:
        gpu = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                             text=True).stdout.strip().splitlines()
    except FileNotFoundError:
        gpu = []
    report = {"bench": "bench/bench_plan_gpu.py", "gpu": gpu[0] if gpu else "none",
              "providers_used": model.providers, "onnxruntime": ort.__version__,
              "machine": platform.platform(), "clips": rows,
              "mean_model_gpu_s_per_clip": round(sum(r["model_gpu_wall_s"] for r in rows) / len(rows), 4)}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if "CUDAExecutionProvider" in model.providers else 1


def _timed(model, frames) -> float:
    start = time.perf_counter()
    model.estimate(frames)
    return time.perf_counter() - start


if __name__ == "__main__":
    raise SystemExit(main())
