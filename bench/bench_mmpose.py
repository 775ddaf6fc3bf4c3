"""The mmpose backend run for real: RTMPose-t from the config inside the mmpose wheel (random weights: the
real checkpoints are not reachable here), YOLOX-nano people, through `MMPoseEstimator`, beside the ONNX
path with the same detector (`OnnxDetectorRTMPose`, ONNX Runtime) and, where torch sees a GPU, the batched
torch engine.

Reports whether it ran, the device it really ran on, model load time, frames/s of each path on the same
frames (4 COCO images + a clip's frames), and whether every frame has the same people count as the ONNX
path (the same detector: it must).

    python bench/bench_mmpose.py --media ../shared/media --models ../shared/models --device cuda --out mm.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from haic_resources.pose.rtmpose_onnx import OnnxDetectorRTMPose  # noqa: E402

COCO = ["000000000785", "000000040083", "000000196141", "000000197388"]
CLIP = "mmaction2_basketball_2p.mp4"


def frames_of(media: Path, clip_frames: int) -> list:
    frames = [cv2.imread(str(media / "images" / "coco" / f"{n}.jpg"))[:, :, ::-1].copy() for n in COCO]
    capture = cv2.VideoCapture(str(media / "videos" / CLIP))
    while len(frames) < len(COCO) + clip_frames:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(bgr[:, :, ::-1].copy())
    return frames


def timed(model, frames, repeats: int) -> tuple[float, list]:
    model.estimate(frames[:2])  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        people = model.estimate(frames)
    return (time.perf_counter() - t0) / repeats, people


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--media", type=Path, required=True)
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--clip-frames", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    det, pose = args.models / "yolox_nano.onnx", args.models / "rtmpose_t_random.onnx"
    frames = frames_of(args.media, args.clip_frames)
    out: dict = {"frames": len(frames)}
    try:
        reference = OnnxDetectorRTMPose(det, pose)
        seconds, ref_people = timed(reference, frames, args.repeats)
        out["onnxruntime_cpu"] = {"frames_per_s": round(len(frames) / seconds, 2), "device_used": reference.device_used}
    except Exception:
        out["onnxruntime_cpu"] = {"failed": traceback.format_exc()[-1500:]}
        ref_people = None
    try:
        import mmcv
        import mmdet
        import mmengine
        import mmpose
        import torch

        from haic_resources.pose.mmpose_inferencer import MMPoseEstimator

        out["versions"] = {"torch": torch.__version__, "mmpose": mmpose.__version__, "mmdet": mmdet.__version__,
                           "mmengine": mmengine.__version__, "mmcv": mmcv.__version__}
        config = Path(mmpose.__file__).parent / ".mim/configs/body_2d_keypoint/rtmpose/coco/rtmpose-t_8xb256-420e_coco-256x192.py"
        t0 = time.perf_counter()
        estimator = MMPoseEstimator(pose_config=str(config), random_weights=True, device=args.device,
                                    detector_path=str(det), min_person_score=0.4)
        load_s = time.perf_counter() - t0
        seconds, people = timed(estimator, frames, args.repeats)
        out["mmpose"] = {"ran": True, "device_used": estimator.device_used, "model_load_s": round(load_s, 2),
                         "frames_per_s": round(len(frames) / seconds, 2),
                         "people_per_frame": [len(p) for p in people],
                         "same_counts_as_onnx": ref_people is not None and
                         [len(p) for p in people] == [len(p) for p in ref_people],
                         "keypoints_shape_ok": all(p.keypoints.shape == (17, 2) for f in people for p in f)}
    except Exception:
        out["mmpose"] = {"ran": False, "failed": traceback.format_exc()[-3000:]}
    try:
        import torch

        if torch.cuda.is_available():
            from haic_resources.pose.batched import BatchedDetectorPose

            batched = BatchedDetectorPose(det, pose, device="cuda", engine="torch")
            seconds, people = timed(batched, frames, args.repeats)
            out["batched_torch_cuda_fp32"] = {"frames_per_s": round(len(frames) / seconds, 2),
                                              "device_used": batched.device_used,
                                              "same_counts_as_onnx": ref_people is not None and
                                              [len(p) for p in people] == [len(p) for p in ref_people]}
    except Exception:
        out["batched_torch_cuda_fp32"] = {"failed": traceback.format_exc()[-1500:]}
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1)[:6000])


if __name__ == "__main__":
    main()
