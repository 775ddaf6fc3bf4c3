"""Production pose path, as in the paper: person detector (YOLOX or RTMDet) + RTMPose, ONNX Runtime.

Top-down, like `rtmlib`, with our own pre/post-processing:
- YOLOX (official export, e.g. yolox_nano 416×416): BGR float 0–255, resized keeping aspect and
  padded with 114 at the bottom/right; raw head output [1, A, 85] (A = Σ (416/s)² over strides
  8, 16, 32 = 3549) decoded on the anchor grid: xy = (xy + grid) · stride, wh = exp(wh) · stride,
  score = objectness × class-0 (person) probability; then NMS.
- RTMDet (mmdeploy end2end export): outputs ``dets [1, N, 5]`` (x0, y0, x1, y1, score) and
  ``labels [1, N]`` in input pixels; input RGB normalized with ImageNet mean/std, same resize/pad.
- RTMPose (e.g. rtmpose-t/s/m 256×192): each person box is enlarged by 1.25, its aspect set to
  192:256, and warped by an affine map into a [3, 256, 192] crop normalized with ImageNet
  mean/std (RGB); SimCC outputs ``simcc_x [N, 17, 384]`` and ``simcc_y [N, 17, 512]`` (split
  ratio 2.0) are decoded by argmax; a keypoint's score is the smaller of its two maxima, as in
  mmpose.

Model files come from settings: a local path, or ``s3://bucket/key`` copied once into a local
cache through the one S3 client set-up (`S3Settings`: endpoint and region, so MinIO works too).
A missing model file is an immediate, explicit error; nothing is ever fetched from a model hub.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from haic_resources.pose.estimator import NMS_IOU, NUM_KEYPOINTS, Person, nms
from haic_resources.storage.disk_full import disk_full_error
from haic_resources.storage.files import written_through_temp
from haic_resources.storage.s3 import S3Settings

log = logging.getLogger(__name__)

IMAGENET_MEAN_RGB = np.array([123.675, 116.28, 103.53], dtype=np.float32)
IMAGENET_STD_RGB = np.array([58.395, 57.12, 57.375], dtype=np.float32)
YOLOX_STRIDES = (8, 16, 32)
YOLOX_PAD_VALUE = 114

Device = Literal["cpu", "cuda", "auto"]


# --------------------------------------------------------------------------- model files
def resolve_model_file(location: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                       s3_client_factory: Callable[[], Any] = S3Settings().client) -> Path:
    """A local path to the model at `location` (local path or ``s3://bucket/key``).

    S3 objects are copied once to ``cache_dir/<bucket>/<key>`` (through a temporary name, so an
    interrupted copy is never mistaken for a model); the client is made only when a copy is
    needed. Raises FileNotFoundError with the location when the file or object does not exist.
    """
    location = str(location)
    if location.startswith("s3://"):
        bucket, _, key = location[len("s3://"):].partition("/")
        if not bucket or not key:
            raise ValueError(f"malformed S3 model location {location!r}; expected s3://bucket/key")
        if cache_dir is None:
            raise ValueError(f"model {location} is on S3: pass cache_dir= for its local copy")
        target = Path(cache_dir) / bucket / key
        if target.is_file():
            return target
        with written_through_temp(target, suffix=".part") as partial:
            try:
                s3_client_factory().download_file(bucket, key, str(partial))
            except Exception as exc:  # botocore ClientError 404/403, missing bucket, no credentials
                if disk_full_error(exc) is not None:
                    raise  # a full disk is not a missing model: said as such, naming the target
                raise FileNotFoundError(f"pose model {location} could not be copied from S3: {exc}") from exc
        return target
    path = Path(location).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"pose model file not found: {path}. Put the ONNX file there or point the setting "
            "at a local path or s3:// URI; models are never downloaded automatically"
        )
    return path


def choose_providers(device: Device, available: list[str]) -> list[str]:
    """ONNX Runtime execution providers for `device` ("cuda" falls back to CPU, with a warning)."""
    if device not in ("cpu", "cuda", "auto"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        log.warning("CUDA requested but onnxruntime offers only %s; running on CPU", available)
    return ["CPUExecutionProvider"]


# --------------------------------------------------------------------------- detector
def letterbox_top_left(image: np.ndarray, size: tuple[int, int], pad_value: float) -> tuple[np.ndarray, float]:
    """Resize keeping aspect so the image fits (h, w) = size, pad bottom/right; return (padded, ratio)."""
    h, w = image.shape[:2]
    ratio = min(size[0] / h, size[1] / w)
    rh, rw = max(1, int(round(h * ratio))), max(1, int(round(w * ratio)))
    resized = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_LINEAR)
    padded = np.full((size[0], size[1], 3), pad_value, dtype=np.float32)
    padded[:rh, :rw] = resized
    return padded, ratio


def yolox_grid(input_hw: tuple[int, int], strides: tuple[int, ...] = YOLOX_STRIDES) -> tuple[np.ndarray, np.ndarray]:
    """Anchor-point grid (A, 2) in cells and per-anchor stride (A, 1), in the head's order."""
    grids, expanded = [], []
    for s in strides:
        hs, ws = input_hw[0] // s, input_hw[1] // s
        xv, yv = np.meshgrid(np.arange(ws), np.arange(hs))
        grids.append(np.stack((xv, yv), axis=2).reshape(-1, 2))
        expanded.append(np.full((hs * ws, 1), s))
    return np.concatenate(grids).astype(np.float32), np.concatenate(expanded).astype(np.float32)


def decode_yolox(raw: np.ndarray, input_hw: tuple[int, int], ratio: float, score_threshold: float, nms_threshold: float, person_class: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw YOLOX head output (A, 5 + C) → person boxes (N, 4) xyxy in frame pixels and scores."""
    grid, strides = yolox_grid(input_hw)
    if raw.shape[0] != grid.shape[0]:
        raise ValueError(f"YOLOX output has {raw.shape[0]} anchors, expected {grid.shape[0]} for input {input_hw}")
    xy = (raw[:, :2] + grid) * strides
    wh = np.exp(raw[:, 2:4]) * strides
    scores = raw[:, 4] * raw[:, 5 + person_class]
    keep = scores >= score_threshold
    xy, wh, scores = xy[keep], wh[keep], scores[keep]
    boxes = np.concatenate([xy - wh / 2, xy + wh / 2], axis=1) / ratio
    idx = nms(boxes, scores, nms_threshold)
    return boxes[idx], scores[idx]


# --------------------------------------------------------------------------- RTMPose
def crop_transform(box: np.ndarray, input_wh: tuple[int, int], padding: float = 1.25) -> np.ndarray:
    """2×3 affine map from frame pixels to the RTMPose crop of `box` (enlarged, aspect-fixed)."""
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64)
    center = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    w, h = (x1 - x0) * padding, (y1 - y0) * padding
    aspect = input_wh[0] / input_wh[1]
    if w > h * aspect:
        h = w / aspect
    else:
        w = h * aspect
    w, h = max(w, 1e-3), max(h, 1e-3)
    sx, sy = input_wh[0] / w, input_wh[1] / h  # equal up to float rounding: aspect was fixed
    return np.array(
        [[sx, 0.0, input_wh[0] / 2 - sx * center[0]], [0.0, sy, input_wh[1] / 2 - sy * center[1]]]
    )


def decode_simcc(simcc_x: np.ndarray, simcc_y: np.ndarray, split_ratio: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """SimCC (N, K, Wx), (N, K, Wy) → keypoints (N, K, 2) in crop pixels and scores (N, K)."""
    x = np.argmax(simcc_x, axis=2).astype(np.float64) / split_ratio
    y = np.argmax(simcc_y, axis=2).astype(np.float64) / split_ratio
    scores = np.minimum(simcc_x.max(axis=2), simcc_y.max(axis=2)).astype(np.float64)
    return np.stack([x, y], axis=2), scores


class OnnxPersonDetector:
    """A person detector (YOLOX or RTMDet) on ONNX Runtime: boxes and scores, duplicates suppressed.

    detector_path: local path or s3:// URI (cache_dir required for S3; `s3` says which endpoint).
    detector_kind: "yolox" (raw head output) or "rtmdet" (mmdeploy end2end dets/labels).
    min_person_score: detector score cut; nms_threshold: duplicate suppression IoU.
    """

    def __init__(
        self,
        detector_path: str | os.PathLike,
        detector_kind: Literal["yolox", "rtmdet"] = "yolox",
        device: Device = "cpu",
        min_person_score: float = 0.4,
        nms_threshold: float = NMS_IOU,
        max_people: int = 20,
        cache_dir: str | os.PathLike | None = None,
        s3: S3Settings = S3Settings(),
        intra_op_threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        if detector_kind not in ("yolox", "rtmdet"):
            raise ValueError(f"detector_kind must be 'yolox' or 'rtmdet', got {detector_kind!r}")
        self.model_path = resolve_model_file(detector_path, cache_dir, s3.client)
        self.providers = choose_providers(device, ort.get_available_providers())
        self.session_options = ort.SessionOptions()
        if intra_op_threads:
            self.session_options.intra_op_num_threads = intra_op_threads
        self._det = ort.InferenceSession(str(self.model_path), self.session_options, providers=self.providers)
        # What the session really uses, not what was asked: CPU ONNX Runtime drops a CUDA request.
        self.device_used = "cuda" if self._det.get_providers()[0] == "CUDAExecutionProvider" else "cpu"
        self.detector_kind = detector_kind
        self.min_person_score = min_person_score
        self.nms_threshold = nms_threshold
        self.max_people = max_people
        det_in = self._det.get_inputs()[0]
        self._det_input = det_in.name
        self.input_hw = (int(det_in.shape[2]), int(det_in.shape[3]))

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes (N, 4) xyxy in frame pixels and scores (N,), best first."""
        if self.detector_kind == "yolox":
            # Official YOLOX weights expect BGR 0–255 without normalization.
            padded, ratio = letterbox_top_left(frame[:, :, ::-1], self.input_hw, YOLOX_PAD_VALUE)
            blob = padded.transpose(2, 0, 1)[None]
            raw = self._det.run(None, {self._det_input: np.ascontiguousarray(blob)})[0][0]
            boxes, scores = decode_yolox(raw, self.input_hw, ratio, self.min_person_score, self.nms_threshold)
        else:
            padded, ratio = letterbox_top_left(frame, self.input_hw, YOLOX_PAD_VALUE)
            blob = ((padded - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB).transpose(2, 0, 1)[None]
            dets, labels = self._det.run(None, {self._det_input: np.ascontiguousarray(blob, dtype=np.float32)})[:2]
            dets, labels = dets[0], labels[0]
            keep = (labels == 0) & (dets[:, 4] >= self.min_person_score)
            boxes, scores = dets[keep, :4] / ratio, dets[keep, 4]
            idx = nms(boxes, scores, self.nms_threshold)
            boxes, scores = boxes[idx], scores[idx]
        h, w = frame.shape[:2]
        boxes = np.clip(boxes, 0, [w, h, w, h])
        return boxes[: self.max_people].astype(np.float64), scores[: self.max_people].astype(np.float64)


class OnnxDetectorRTMPose:
    """Person detector + RTMPose on ONNX Runtime (CPU or CUDA).

    detector_path / pose_path: local paths or s3:// URIs (cache_dir required for S3; `s3` says
        which endpoint and region).
    detector_kind: "yolox" (raw head output) or "rtmdet" (mmdeploy end2end dets/labels).
    min_person_score: detector score cut (not in the paper; 0.4 keeps yolox_nano's people on
        the COCO test images and drops its low-score clutter).
    nms_threshold: duplicate suppression IoU of the detector's boxes.
    input_long_side: the long side the frame reader should resize frames to (default: the
        detector's input size); larger values give RTMPose sharper crops of small people.
    """

    def __init__(
        self,
        detector_path: str | os.PathLike,
        pose_path: str | os.PathLike,
        detector_kind: Literal["yolox", "rtmdet"] = "yolox",
        device: Device = "cpu",
        min_person_score: float = 0.4,
        nms_threshold: float = NMS_IOU,
        max_people: int = 20,
        bbox_padding: float = 1.25,
        simcc_split_ratio: float = 2.0,
        input_long_side: int | None = None,
        cache_dir: str | os.PathLike | None = None,
        s3: S3Settings = S3Settings(),
        intra_op_threads: int | None = None,
    ) -> None:
        import onnxruntime as ort

        self.detector = OnnxPersonDetector(detector_path, detector_kind, device, min_person_score, nms_threshold,
                                           max_people, cache_dir, s3, intra_op_threads)
        pose_file = resolve_model_file(pose_path, cache_dir, s3.client)
        self.providers = self.detector.providers
        self.device_used = self.detector.device_used
        self._pose = ort.InferenceSession(str(pose_file), self.detector.session_options, providers=self.providers)
        self.bbox_padding = bbox_padding
        self.simcc_split_ratio = simcc_split_ratio
        pose_in = self._pose.get_inputs()[0]
        self._pose_input = pose_in.name
        if len(pose_in.shape) != 4 or not all(isinstance(d, int) for d in pose_in.shape[2:]):
            raise ValueError(f"RTMPose input must be [N, 3, H, W] with fixed H, W; got {pose_in.shape}")
        self.pose_input_wh = (int(pose_in.shape[3]), int(pose_in.shape[2]))
        # A fixed batch dimension (official exports: 1) means crops go through in chunks of it;
        # a symbolic one ('batch', None) takes every crop of a frame set at once.
        batch = pose_in.shape[0]
        self.pose_batch = int(batch) if isinstance(batch, int) and batch > 0 else None
        outputs = {o.name: o for o in self._pose.get_outputs()}
        if not {"simcc_x", "simcc_y"} <= outputs.keys():
            raise ValueError(f"RTMPose outputs must include simcc_x and simcc_y; got {sorted(outputs)}")
        self.input_long_side = input_long_side if input_long_side is not None else max(self.detector.input_hw)

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.detector.detect(frame)

    # -- pose
    def crops(self, frame: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Normalized crops (N, 3, H, W) float32 and their frame→crop affine maps (N, 2, 3)."""
        w_in, h_in = self.pose_input_wh
        out = np.empty((len(boxes), 3, h_in, w_in), dtype=np.float32)
        maps = np.empty((len(boxes), 2, 3))
        for k, box in enumerate(boxes):
            m = crop_transform(box, self.pose_input_wh, self.bbox_padding)
            crop = cv2.warpAffine(frame, m, (w_in, h_in), flags=cv2.INTER_LINEAR)
            out[k] = ((crop.astype(np.float32) - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB).transpose(2, 0, 1)
            maps[k] = m
        return out, maps

    def run_pose(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """SimCC outputs for a stack of crops, batched as the model allows."""
        if len(crops) == 0:
            return np.zeros((0, NUM_KEYPOINTS, 2)), np.zeros((0, NUM_KEYPOINTS))
        step = self.pose_batch or len(crops)
        xs, ys = [], []
        for start in range(0, len(crops), step):
            chunk = crops[start : start + step]
            if self.pose_batch and len(chunk) < self.pose_batch:  # pad the last fixed-size chunk
                chunk = np.concatenate([chunk, np.zeros((self.pose_batch - len(chunk), *chunk.shape[1:]), np.float32)])
            sx, sy = self._pose.run(["simcc_x", "simcc_y"], {self._pose_input: chunk})
            xs.append(sx)
            ys.append(sy)
        simcc_x, simcc_y = np.concatenate(xs)[: len(crops)], np.concatenate(ys)[: len(crops)]
        return decode_simcc(simcc_x, simcc_y, self.simcc_split_ratio)

    def estimate(self, frames: list[np.ndarray]) -> list[list[Person]]:
        detections = [self.detect(f) for f in frames]
        crops, maps, owners = [], [], []
        for f, (frame, (boxes, _)) in enumerate(zip(frames, detections)):
            c, m = self.crops(frame, boxes)
            crops.append(c)
            maps.append(m)
            owners += [f] * len(boxes)
        all_crops = np.concatenate(crops) if crops else np.zeros((0, 3, 1, 1), np.float32)
        kps, kscores = self.run_pose(all_crops)
        all_maps = np.concatenate(maps) if maps else np.zeros((0, 2, 3))
        people: list[list[Person]] = [[] for _ in frames]
        k = 0
        for f, (boxes, scores) in enumerate(detections):
            for box, score in zip(boxes, scores):
                inverse = cv2.invertAffineTransform(all_maps[k])
                frame_kps = kps[k] @ inverse[:, :2].T + inverse[:, 2]
                people[f].append(
                    Person(box=box, score=float(score), keypoints=frame_kps, keypoint_scores=np.clip(kscores[k], 0.0, 1.0))
                )
                k += 1
        return people
