"""The default people model: a person detector that counts crowds, MoveNet keypoints on each person.

MoveNet MultiPose alone returns at most 6 people, misses most people of a crowd and merges
overlapping ones (bench/eval_pose_accuracy.py: recall at IoU ≥ 0.5 on the annotated images and crowd
frames). A person detector finds them: by default the Apache-2.0 YOLOX-nano that ships in
`haic_resources/pose/models/` (its sha256 verified), or a YOLOX/RTMDet file the deployment points at
with HAIC_POSE_DETECTOR_MODEL. On frames where the whole frame shows 2 people or more it also looks at
2 × 2 overlapping tiles (`tiling`), so that a crowd's small people are counted. MoveNet, the best real
keypoint model we have, then runs top-down on each detected person's crop, so the people the presence
test counts are the people whose keypoints the motion filters track. A crop where MoveNet finds nobody
matching the box keeps the box with keypoint scores 0: such a box has no body, and the presence test
records it as not a person.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from haic_resources.pose.estimator import NMS_IOU, NUM_KEYPOINTS, Person, box_iou
from haic_resources.pose.movenet import MoveNetMultiPose
from haic_resources.pose.rtmpose_onnx import Device, OnnxPersonDetector, crop_transform
from haic_resources.pose.tiling import new_tile_finds, tile_windows
from haic_resources.storage.files import sha256_file
from haic_resources.storage.s3 import S3Settings

# The detector that ships with the project (haic_resources/pose/models/README.md).
SHIPPED_DETECTOR = Path(__file__).resolve().parent / "models" / "yolox_nano.onnx"
SHIPPED_DETECTOR_SHA256 = "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"

# Frames are read at this long side. The detector letterboxes the whole frame and each tile to its own input
# (YOLOX-nano: 416), so this sets the tiles' detail and MoveNet's crops. Measured (bench/eval_pose_accuracy.py):
# 640 counts 10 of the 14 annotated people of the crowd frames and 16 of the 19 of the COCO/OCHuman images
# (counts exact against the visible people in 5 of 7); 960: 11 and 15 (4 of 7); 1280: 10 crowd people. 640 and
# 960 cost the same per frame on 2 cores (6.8 and 6.7 frames/s).
INPUT_LONG_SIDE = 640
# MoveNet looks at each person through a square crop of this side (a multiple of 32: one
# interpreter shape for every crop, so the graph is planned once).
CROP_SIDE = 256
# The MoveNet row of a crop is the one whose box best overlaps the detector's box; below this IoU
# MoveNet found someone else (a neighbour in the crop) or nobody.
MIN_CROP_MATCH_IOU = 0.3


def shipped_detector() -> Path:
    """The shipped YOLOX-nano, its hash verified (a damaged or replaced file is refused, not run)."""
    if not SHIPPED_DETECTOR.is_file():
        raise FileNotFoundError(f"the shipped person detector {SHIPPED_DETECTOR} is missing; reinstall the project "
                                "or set HAIC_POSE_DETECTOR_MODEL to a YOLOX or RTMDet .onnx")
    if (actual := sha256_file(SHIPPED_DETECTOR)) != SHIPPED_DETECTOR_SHA256:
        raise ValueError(f"the shipped person detector {SHIPPED_DETECTOR} has sha256 {actual}, expected "
                         f"{SHIPPED_DETECTOR_SHA256}; refusing to run an unverified model")
    return SHIPPED_DETECTOR


class DetectorMoveNet:
    """Person detector (YOLOX or RTMDet on ONNX Runtime) + MoveNet keypoints on each person's crop.

    detector_path: the detector .onnx (local path or s3://); None: the shipped YOLOX-nano.
    min_person_score: detector score cut. Measured with YOLOX-nano (bench/eval_pose_accuracy.py):
        see `PoseSettings.min_person_score` for the value the pipeline passes.
    nms_threshold: duplicate suppression IoU of the detector's boxes.
    input_long_side: the long side the frame reader resizes frames to before detection and crops.
    crop_padding: each box is enlarged by this factor before MoveNet sees it (context for limbs).
    tile_grid: 1 = the detector sees the whole frame only; g > 1 = on frames where the whole frame shows
        `tile_from_people` people or more, it also sees g × g overlapping tiles, each at its own input size,
        and the tiles' new people are added (`tiling.new_tile_finds`): a crowd's small people are counted.
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        detector_path: str | os.PathLike | None = None,
        detector_kind: Literal["yolox", "rtmdet"] = "yolox",
        device: Device = "cpu",
        min_person_score: float = 0.3,
        nms_threshold: float = NMS_IOU,
        max_people: int = 20,
        input_long_side: int = INPUT_LONG_SIDE,
        crop_padding: float = 1.25,
        s3: S3Settings = S3Settings(),
        movenet_model_path: str | os.PathLike | None = None,
        tile_grid: int = 1,
        tile_from_people: int = 2,
    ) -> None:
        if tile_grid < 1:
            raise ValueError(f"tile_grid must be 1 (no tiles) or more, got {tile_grid}")
        if detector_path is None:
            detector_path = shipped_detector()
        self.detector = OnnxPersonDetector(detector_path, detector_kind, device, min_person_score, nms_threshold,
                                           max_people, cache_dir, s3)
        # Every MoveNet row of a crop is needed to pick the one that is the detected person.
        self.keypoint_model = MoveNetMultiPose(cache_dir, input_long_side=CROP_SIDE, min_person_score=0.0,
                                               nms_threshold=None, model_path=movenet_model_path)
        self.min_person_score = min_person_score
        # MoveNet runs on LiteRT's CPU interpreter whatever the detector uses.
        self.device_used = "cpu" if self.detector.device_used == "cpu" else "cuda (detector) + cpu (MoveNet)"
        self.input_long_side = input_long_side
        self.crop_padding = crop_padding
        self.tile_grid, self.tile_from_people = tile_grid, tile_from_people
        self.nms_threshold = nms_threshold

    def detect(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Person boxes (N, 4) in frame pixels and scores (N,): the whole frame's, then the tiles' new ones."""
        boxes, scores = self.detector.detect(frame)
        if self.tile_grid < 2 or len(boxes) < self.tile_from_people:
            return boxes, scores
        h, w = frame.shape[:2]
        tiles = []
        for window in tile_windows(h, w, self.tile_grid):
            x0, y0, x1, y1 = window
            tile_boxes, tile_scores = self.detector.detect(np.ascontiguousarray(frame[y0:y1, x0:x1]))
            tiles.append((window, tile_boxes + np.array([x0, y0, x0, y0], dtype=np.float64), tile_scores))
        found = new_tile_finds(boxes, tiles, h, w, self.nms_threshold)
        return (np.concatenate([boxes, np.array([tiles[t][1][k] for t, k in found]).reshape(-1, 4)]),
                np.concatenate([scores, np.array([tiles[t][2][k] for t, k in found], dtype=np.float64)]))

    def keypoints_in_box(self, frame: np.ndarray, box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """MoveNet's (17, 2) keypoints in frame pixels and (17,) scores for the person in `box`."""
        to_crop = crop_transform(box, (CROP_SIDE, CROP_SIDE), self.crop_padding)
        crop = cv2.warpAffine(frame, to_crop, (CROP_SIDE, CROP_SIDE), flags=cv2.INTER_LINEAR)
        rows = self.keypoint_model.estimate_one(crop)
        if not rows:
            return np.zeros((NUM_KEYPOINTS, 2)), np.zeros(NUM_KEYPOINTS)
        box_in_crop = np.concatenate([to_crop[:, :2] @ box[:2] + to_crop[:, 2], to_crop[:, :2] @ box[2:] + to_crop[:, 2]])
        overlaps = box_iou(box_in_crop, np.array([r.box for r in rows]))
        best = int(np.argmax(overlaps))
        if overlaps[best] < MIN_CROP_MATCH_IOU:
            return np.zeros((NUM_KEYPOINTS, 2)), np.zeros(NUM_KEYPOINTS)
        to_frame = cv2.invertAffineTransform(to_crop)
        return rows[best].keypoints @ to_frame[:, :2].T + to_frame[:, 2], rows[best].keypoint_scores

    def estimate_one(self, frame: np.ndarray) -> list[Person]:
        boxes, scores = self.detect(frame)
        people = []
        for box, score in zip(boxes, scores):
            keypoints, keypoint_scores = self.keypoints_in_box(frame, box)
            people.append(Person(box=box, score=float(score), keypoints=keypoints, keypoint_scores=keypoint_scores))
        return people

    def estimate(self, frames: list[np.ndarray]) -> list[list[Person]]:
        return [self.estimate_one(f) for f in frames]
