"""Detector + RTMPose over many clips at once: the GPU backend (``batched``).

Batching decides everything on a GPU (issue 14: YOLOX-nano converted by onnx2torch runs about 100
frames/s one at a time and thousands per second in batches). So this backend takes the sampled
frames of many clips together: every frame of every clip goes through the detector in one stack
(chunked by the runner), every person crop of every frame through RTMPose in one stack, and the
models stay resident on the device for the backend's life. The pre- and post-processing are the
ONNX path's own (`rtmpose_onnx`: letterbox, YOLOX decode, crop affine, SimCC decode), so with the
ONNX Runtime runner on CPU this backend gives exactly the `onnx` backend's people, and on a GPU
it differs only by the networks' float arithmetic (tests/test_pose_batched.py, bench/).

`device_used` says where the networks really ran ("cuda" only on a GPU, whatever was asked).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Literal

import cv2
import numpy as np

from haic_resources.pose.estimator import NMS_IOU, NUM_KEYPOINTS, Person
from haic_resources.pose.model_runners import Engine, OrtRunner, TorchRunner, choose_engine
from haic_resources.pose.rtmpose_onnx import (IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, YOLOX_PAD_VALUE, crop_transform,
                                              decode_simcc, decode_yolox, letterbox_top_left, resolve_model_file)
from haic_resources.storage.s3 import S3Settings


class BatchedDetectorPose:
    """YOLOX person detector + RTMPose, batched over all frames given at once.

    detector_path / pose_path: local paths or s3:// URIs (as the `onnx` backend).
    device: "cuda" | "cpu" | "auto"; engine: "torch" (onnx2torch, the GPU path) | "onnxruntime" |
        "auto" (torch when installed); half: fp16 networks on a GPU.
    max_batch: largest stack one network call takes (the GPU's memory bounds it, not the clips).
    threads: CPU threads for letterboxing and cropping (OpenCV releases the GIL).
    Other settings as `OnnxDetectorRTMPose`.
    """

    def __init__(
        self,
        detector_path: str | os.PathLike,
        pose_path: str | os.PathLike,
        device: str = "auto",
        engine: Engine = "auto",
        half: bool = False,
        min_person_score: float = 0.4,
        nms_threshold: float = NMS_IOU,
        max_people: int = 20,
        bbox_padding: float = 1.25,
        simcc_split_ratio: float = 2.0,
        input_long_side: int | None = None,
        max_batch: int = 256,
        threads: int = 8,
        cache_dir: str | os.PathLike | None = None,
        s3: S3Settings = S3Settings(),
        detector_kind: Literal["yolox"] = "yolox",
        on_device: bool = True,
    ) -> None:
        if detector_kind != "yolox":
            raise ValueError("the batched backend decodes YOLOX heads only; use the onnx backend for RTMDet")
        detector_file = resolve_model_file(detector_path, cache_dir, s3.client)
        pose_file = resolve_model_file(pose_path, cache_dir, s3.client)
        self.engine = choose_engine(engine)
        if self.engine == "torch":
            self.runner = TorchRunner(detector_file, pose_file, device, half, max_batch)
        else:
            self.runner = OrtRunner(detector_file, pose_file, device)
        self.device_used = self.runner.device_used
        self.min_person_score = min_person_score
        self.nms_threshold = nms_threshold
        self.max_people = max_people
        self.bbox_padding = bbox_padding
        self.simcc_split_ratio = simcc_split_ratio
        self.input_hw = self.runner.detector_input_hw
        self.pose_input_wh = self.runner.pose_input_wh
        self.input_long_side = input_long_side if input_long_side is not None else max(self.input_hw)
        self._pool = ThreadPoolExecutor(max(1, threads))
        # Pre/post-processing on the networks' device (torch engine); False: OpenCV/numpy on the host.
        self.on_device = on_device

    def describe(self) -> str:
        return f"{self.engine} on {self.device_used}"

    # -- stages over one flat list of frames
    def _letterbox(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        padded, ratio = letterbox_top_left(frame[:, :, ::-1], self.input_hw, YOLOX_PAD_VALUE)  # YOLOX: BGR 0–255
        return padded.transpose(2, 0, 1), ratio

    def detect_all(self, frames: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """(boxes (N, 4) xyxy in frame pixels, scores (N,)) per frame, from one detector stack."""
        if not frames:
            return []
        prepared = list(self._pool.map(self._letterbox, frames))
        raw = self.runner.run_detector(np.stack([blob for blob, _ in prepared]))
        out = []
        for frame, (_, ratio), head in zip(frames, prepared, raw):
            boxes, scores = decode_yolox(head, self.input_hw, ratio, self.min_person_score, self.nms_threshold)
            h, w = frame.shape[:2]
            boxes = np.clip(boxes, 0, [w, h, w, h])
            out.append((boxes[: self.max_people].astype(np.float64), scores[: self.max_people].astype(np.float64)))
        return out

    def _crop(self, job: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        frame, box = job
        w_in, h_in = self.pose_input_wh
        m = crop_transform(box, self.pose_input_wh, self.bbox_padding)
        crop = cv2.warpAffine(frame, m, (w_in, h_in), flags=cv2.INTER_LINEAR)
        return ((crop.astype(np.float32) - IMAGENET_MEAN_RGB) / IMAGENET_STD_RGB).transpose(2, 0, 1), m

    def pose_all(self, frames: list[np.ndarray], detections: list[tuple[np.ndarray, np.ndarray]]) -> list[list[Person]]:
        """Every detected person's keypoints, from one RTMPose stack of all crops."""
        jobs = [(frame, box) for frame, (boxes, _) in zip(frames, detections) for box in boxes]
        people: list[list[Person]] = [[] for _ in frames]
        if not jobs:
            return people
        crops = list(self._pool.map(self._crop, jobs))
        simcc_x, simcc_y = self.runner.run_pose(np.stack([c for c, _ in crops]))
        kps, kscores = decode_simcc(simcc_x, simcc_y, self.simcc_split_ratio)
        k = 0
        for f, (boxes, scores) in enumerate(detections):
            for box, score in zip(boxes, scores):
                inverse = cv2.invertAffineTransform(crops[k][1])
                people[f].append(Person(box=box, score=float(score), keypoints=kps[k] @ inverse[:, :2].T + inverse[:, 2],
                                        keypoint_scores=np.clip(kscores[k], 0.0, 1.0).reshape(NUM_KEYPOINTS)))
                k += 1
        return people

    def estimate_on_device(self, frames: list) -> list[list[Person]]:
        """The torch engine's whole step on its device (`torch_batch_ops`): frames in, people out."""
        from haic_resources.pose import torch_batch_ops as ops

        torch, runner = self.runner.torch, self.runner
        with torch.inference_mode():
            on_device = ops.frames_to_device(torch, frames, runner.device_used)
            canvas, ratios = ops.letterbox(torch, on_device, self.input_hw)
            raw = runner.on_device(runner.detector, canvas)[0]
            sizes = [tuple(f.shape[:2]) for f in on_device]
            detections = ops.decode_yolox_batch(torch, raw, self.input_hw, ratios, sizes, self.min_person_score,
                                                self.nms_threshold, self.max_people)
            owners = [f for f, (boxes, _) in enumerate(detections) for _ in boxes]
            people: list[list[Person]] = [[] for _ in frames]
            if not owners:
                return people
            crops, maps = ops.crop_stack(torch, on_device, owners, np.concatenate([b for b, _ in detections]),
                                         self.pose_input_wh, self.bbox_padding)
            simcc_x, simcc_y = runner.on_device(runner.pose, crops)
            kps, kscores = ops.decode_simcc_batch(torch, simcc_x, simcc_y, self.simcc_split_ratio)
        k = 0
        for f, (boxes, scores) in enumerate(detections):
            for box, score in zip(boxes, scores):
                inverse = cv2.invertAffineTransform(maps[k])
                people[f].append(Person(box=box, score=float(score), keypoints=kps[k] @ inverse[:, :2].T + inverse[:, 2],
                                        keypoint_scores=np.clip(kscores[k], 0.0, 1.0)))
                k += 1
        return people

    # -- the backend interface
    def estimate(self, frames: list) -> list[list[Person]]:
        if self.engine == "torch" and self.on_device:
            return self.estimate_on_device(frames)
        return self.pose_all(frames, self.detect_all(frames))

    def estimate_clips(self, clips: list[list[np.ndarray]]) -> list[list[list[Person]]]:
        """People per frame per clip, all clips' frames in one detector and one pose stack."""
        flat = [frame for frames in clips for frame in frames]
        people = self.estimate(flat)
        out, start = [], 0
        for frames in clips:
            out.append(people[start:start + len(frames)])
            start += len(frames)
        return out
