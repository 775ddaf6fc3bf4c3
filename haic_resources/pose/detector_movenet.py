"""The default people model: a person detector that counts crowds, MoveNet keypoints on each person.

MoveNet MultiPose alone returns at most 6 people, misses most people of a crowd and merges
overlapping ones (bench/eval_pose_accuracy.py: recall at IoU ≥ 0.5 on the annotated images).
A person detector (YOLOX or RTMDet, e.g. the Apache-2.0 YOLOX-nano, a file the deployment points
at with HAIC_POSE_DETECTOR_MODEL: no model ships inside this repository) finds them; MoveNet, the best real keypoint model we have, then runs top-down on each detected person's
crop, so the people the presence test counts are the people whose keypoints the motion filters
track. A crop where MoveNet finds nobody matching the box keeps the box with keypoint scores 0:
the motion filters skip keypoints under their score floor, so an unknown pose never counts as
motion.
"""

from __future__ import annotations

import os
from typing import Literal

import cv2
import numpy as np

from haic_resources.pose.estimator import NMS_IOU, NUM_KEYPOINTS, Person, box_iou
from haic_resources.pose.movenet import MoveNetMultiPose
from haic_resources.pose.rtmpose_onnx import Device, OnnxPersonDetector, crop_transform
from haic_resources.storage.s3 import S3Settings

# MoveNet looks at each person through a square crop of this side (a multiple of 32: one
# interpreter shape for every crop, so the graph is planned once).
CROP_SIDE = 256
# The MoveNet row of a crop is the one whose box best overlaps the detector's box; below this IoU
# MoveNet found someone else (a neighbour in the crop) or nobody.
MIN_CROP_MATCH_IOU = 0.3


class DetectorMoveNet:
    """Person detector (YOLOX or RTMDet on ONNX Runtime) + MoveNet keypoints on each person's crop.

    detector_path: the detector .onnx (local path or s3://).
    min_person_score: detector score cut. Measured with YOLOX-nano (bench/eval_pose_accuracy.py):
        see `PoseSettings.min_person_score` for the value the pipeline passes.
    nms_threshold: duplicate suppression IoU of the detector's boxes.
    input_long_side: the long side the frame reader resizes frames to before detection and crops.
    crop_padding: each box is enlarged by this factor before MoveNet sees it (context for limbs).
    """

    def __init__(
        self,
        cache_dir: str | os.PathLike,
        detector_path: str | os.PathLike | None,
        detector_kind: Literal["yolox", "rtmdet"] = "yolox",
        device: Device = "cpu",
        min_person_score: float = 0.3,
        nms_threshold: float = NMS_IOU,
        max_people: int = 20,
        input_long_side: int = 640,
        crop_padding: float = 1.25,
        s3: S3Settings = S3Settings(),
        movenet_model_path: str | os.PathLike | None = None,
    ) -> None:
        if detector_path is None:
            raise ValueError("the detector_movenet backend needs a person detector model: set "
                             "HAIC_POSE_DETECTOR_MODEL to a YOLOX or RTMDet .onnx (a local path or s3://)")
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
        boxes, scores = self.detector.detect(frame)
        people = []
        for box, score in zip(boxes, scores):
            keypoints, keypoint_scores = self.keypoints_in_box(frame, box)
            people.append(Person(box=box, score=float(score), keypoints=keypoints, keypoint_scores=keypoint_scores))
        return people

    def estimate(self, frames: list[np.ndarray]) -> list[list[Person]]:
        return [self.estimate_one(f) for f in frames]
