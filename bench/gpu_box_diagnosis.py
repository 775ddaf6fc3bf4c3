"""Why one COCO box differed by 15.8 px between the GPU torch engine and ONNX Runtime (bench/GPU_NOTES.md).

On the 4 COCO images of tests/test_pose_batched.py, at full size and at the detector's long side, stage by
stage: the letterbox canvas (device vs OpenCV on the host), the raw YOLOX head on the same canvas (GPU
torch vs ONNX Runtime; TF32 convolutions on and off), the candidates past the score cut, and the final
boxes (worst distance of each GPU box to its nearest CPU box), for the on-device path and the host path.

    python bench/gpu_box_diagnosis.py --media ../shared/media --models ../shared/models --out box.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from haic_resources.pose import torch_batch_ops as ops  # noqa: E402
from haic_resources.pose.batched import BatchedDetectorPose  # noqa: E402
from haic_resources.video.frame_reader import resized_size  # noqa: E402

COCO = ("000000000785", "000000040083", "000000196141", "000000197388")


def worst(got, want) -> float:
    return max((min(float(np.abs(a.box - b.box).max()) for b in w) if w else float("inf"))
               for g, w in zip(got, want) for a in g) if any(got) else 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", type=Path, required=True)
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    import torch

    det, pose = args.models / "yolox_nano.onnx", args.models / "rtmpose_t_random.onnx"
    full = [cv2.imread(str(args.media / "images" / "coco" / f"{n}.jpg"))[:, :, ::-1].copy() for n in COCO]
    small = [cv2.resize(f, resized_size(f.shape[1], f.shape[0], 416), interpolation=cv2.INTER_AREA) for f in full]
    cpu = BatchedDetectorPose(det, pose, device="cpu", engine="onnxruntime")
    out: dict = {"tf32_default": torch.backends.cudnn.allow_tf32}
    for tf32 in (True, False):
        torch.backends.cudnn.allow_tf32 = tf32
        gpu = BatchedDetectorPose(det, pose, device="cuda", engine="torch")
        for label, frames in (("full", full), ("416", small)):
            row: dict = {}
            want = cpu.estimate(frames)
            row["counts_cpu"] = [len(p) for p in want]
            dev = gpu.estimate_on_device(frames)
            host = gpu.pose_all(frames, gpu.detect_all(frames))
            row["counts_gpu_device"], row["counts_gpu_host"] = [len(p) for p in dev], [len(p) for p in host]
            row["worst_box_px_device"], row["worst_box_px_host"] = worst(dev, want), worst(host, want)
            with torch.inference_mode():
                on_dev = ops.frames_to_device(torch, frames, "cuda")
                canvas, _ = ops.letterbox(torch, on_dev, gpu.input_hw)
                host_canvas = np.stack([gpu._letterbox(f)[0] for f in frames])
                row["canvas_max_abs_diff"] = float(np.abs(canvas.cpu().numpy() - host_canvas).max())
                raw_dev = gpu.runner.on_device(gpu.runner.detector, canvas)[0][..., :6].float().cpu().numpy()
                raw_host = gpu.runner.run_detector(host_canvas)
                raw_cpu = cpu.runner.run_detector(host_canvas)[..., :6]
            row["head_max_abs_diff_gpu_vs_ort"] = float(np.abs(raw_host - raw_cpu).max())
            row["head_max_abs_diff_device_vs_host_canvas"] = float(np.abs(raw_dev - raw_host).max())
            scores = lambda r: r[..., 4] * r[..., 5]  # noqa: E731
            row["score_max_abs_diff_gpu_vs_ort"] = float(np.abs(scores(raw_host) - scores(raw_cpu)).max())
            row["candidates_gpu_ort"] = [[int((scores(r)[k] >= cpu.min_person_score).sum()) for k in range(len(frames))]
                                         for r in (raw_dev, raw_cpu)]
            row["boxes_cpu"] = [[[round(float(v), 1) for v in p.box] + [round(p.score, 4)] for p in f] for f in want]
            row["boxes_gpu_device"] = [[[round(float(v), 1) for v in p.box] + [round(p.score, 4)] for p in f] for f in dev]
            out[f"tf32_{tf32}_{label}"] = row
            print(f"tf32={tf32} {label}:", json.dumps({k: v for k, v in row.items() if not k.startswith("boxes")}),
                  flush=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
