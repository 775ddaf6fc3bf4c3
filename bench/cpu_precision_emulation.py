"""What the GPU's arithmetic alone does to YOLOX's boxes, emulated on the CPU (no device time left).

On a GPU, fp32 convolutions run as TF32 by default (cuDNN: inputs and weights rounded to a 10-bit
mantissa) and the fp16 engine rounds every activation to fp16. Here the torch engine runs on the CPU
with each Conv's inputs and weights rounded the same way (TF32) or every module's output and weight
rounded to fp16, on the 4 COCO images of tests/test_pose_batched.py, at full size and at the
detector's long side (416, as the frame readers deliver frames), through the on-device pre-processing
and the host one; each box is compared with the nearest ONNX Runtime (fp32) box.

    python bench/cpu_precision_emulation.py --media ../shared/media --models ../shared/models
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

from haic_resources.pose.batched import BatchedDetectorPose  # noqa: E402
from haic_resources.video.frame_reader import resized_size  # noqa: E402

COCO = ("000000000785", "000000040083", "000000196141", "000000197388")


def tf32(torch, x):
    """x rounded to TF32 (8-bit exponent, 10-bit mantissa), to nearest."""
    bits = x.contiguous().view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)


def emulate(torch, module, precision: str) -> None:
    """Round `module`'s arithmetic in place as a GPU would: "tf32" convolutions or "fp16" everywhere."""
    if precision == "fp32":
        return
    rnd = (lambda x: tf32(torch, x)) if precision == "tf32" else (lambda x: x.half().float())
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.Conv2d) or (precision == "fp16" and hasattr(m, "weight")
                                                  and isinstance(getattr(m, "weight"), torch.Tensor)):
                m.weight.copy_(rnd(m.weight))
    for m in module.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_pre_hook(lambda _m, args: tuple(rnd(a) if a.is_floating_point() else a for a in args))
        if precision == "fp16" and not list(m.children()):
            m.register_forward_hook(lambda _m, _a, out: rnd(out) if isinstance(out, torch.Tensor)
                                    and out.is_floating_point() else out)


def box_gaps(got, want) -> list:
    """Per GPU-side box: distance (px, max over corners) to the nearest reference box, with both scores."""
    rows = []
    for f, (g, w) in enumerate(zip(got, want)):
        for a in g:
            d = [float(np.abs(a.box - b.box).max()) for b in w]
            k = int(np.argmin(d)) if d else -1
            rows.append({"frame": f, "px": round(min(d), 3) if d else None, "score": round(a.score, 4),
                         "ref_score": round(w[k].score, 4) if d else None})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", type=Path, required=True)
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    import torch

    det, pose = args.models / "yolox_nano.onnx", args.models / "rtmpose_t_random.onnx"
    full = [cv2.imread(str(args.media / "images" / "coco" / f"{n}.jpg"))[:, :, ::-1].copy() for n in COCO]
    small = [cv2.resize(f, resized_size(f.shape[1], f.shape[0], 416), interpolation=cv2.INTER_AREA) for f in full]
    ort = BatchedDetectorPose(det, pose, device="cpu", engine="onnxruntime", threads=2)
    want = {"full": ort.estimate(full), "416": ort.estimate(small)}
    out = {}
    for precision in ("fp32", "tf32", "fp16"):
        model = BatchedDetectorPose(det, pose, device="cpu", engine="torch", threads=2)
        emulate(torch, model.runner.detector, precision)
        for label, frames in (("full", full), ("416", small)):
            device_side = model.estimate_on_device(frames)
            host_side = model.pose_all(frames, model.detect_all(frames))
            row = {"counts": [len(p) for p in device_side], "counts_ref": [len(p) for p in want[label]],
                   "worst_px_device_preprocessing": max(r["px"] for r in box_gaps(device_side, want[label])),
                   "worst_px_host_preprocessing": max(r["px"] for r in box_gaps(host_side, want[label])),
                   "boxes_over_1px": [r for r in box_gaps(device_side, want[label]) if r["px"] > 1.0]}
            out[f"{precision}_{label}"] = row
            print(precision, label, json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
