"""One interface for multi-person 17-keypoint pose estimation, whatever model runs behind it.

The human filters need, per frame, every person's box, score and 17 COCO keypoints. Backends:

- ``movenet`` (`pose_movenet`): MoveNet MultiPose Lightning, the embedded default (its model file comes in a
  registry wheel); CPU, no extra stack. Frames where the whole frame shows 2 or more people are looked at
  again in 2 × 2 overlapping tiles (a setting), so that a crowd's small people are counted (`tiling`).
- ``onnx`` (`pose_onnx`): YOLOX/RTMDet person detector + RTMPose through ONNX Runtime, as the
  paper (RTMPose) — the production path, CPU or CUDA.
- ``mmpose`` (`pose_mmpose`): the OpenMMLab stack (`mmpose.apis.init_model`), optional extra ``mmpose``.
- ``batched`` (`pose_batched`): YOLOX + RTMPose over many clips' frames at once, on PyTorch
  (onnx2torch; the GPU path, optional extra ``gpu``) or ONNX Runtime.
- ``detector_movenet`` (`pose_detector_movenet`): a YOLOX/RTMDet person detector (ONNX Runtime, a model
  file the deployment points at) + MoveNet keypoints on each detected person's crop: the best counts
  measured (bench/eval_pose_accuracy.py), where such a file is at hand.

Every backend suppresses duplicate boxes of one person (`suppress_duplicates`, IoU a setting):
a person found twice would count twice and double the covered area.

Backends are imported lazily so that choosing one never imports another's runtime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

# COCO keypoint order shared by every backend (and by the annotations we evaluate against).
COCO_KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
NUM_KEYPOINTS = len(COCO_KEYPOINTS)

# Limb pairs (indices into COCO_KEYPOINTS) for drawing skeletons.
COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
    (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip


@dataclass(frozen=True)
class Person:
    """One detected person, in pixels of the frame that was given to `estimate`.

    box: (4,) float xyxy; keypoints: (17, 2) float (x, y); keypoint_scores: (17,) in [0, 1].
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    keypoint_scores: np.ndarray

    def __post_init__(self) -> None:
        if np.shape(self.box) != (4,):
            raise ValueError(f"box must be (4,) xyxy, got {np.shape(self.box)}")
        if np.shape(self.keypoints) != (NUM_KEYPOINTS, 2):
            raise ValueError(f"keypoints must be (17, 2), got {np.shape(self.keypoints)}")
        if np.shape(self.keypoint_scores) != (NUM_KEYPOINTS,):
            raise ValueError(f"keypoint_scores must be (17,), got {np.shape(self.keypoint_scores)}")


@runtime_checkable
class PoseEstimator(Protocol):
    """Anything that finds people and their 17 COCO keypoints in RGB uint8 frames."""

    #: Where the networks really run: "cpu", or "cuda" only when they are on a GPU (never the
    #: device that was asked for and fell back).
    device_used: str

    #: Long side (pixels) at which the model looks at a frame; the frame reader resizes each
    #: decoded frame once to this size so that no pixel is scaled twice. None: any size.
    input_long_side: int | None

    def estimate(self, frames: list[np.ndarray]) -> list[list[Person]]:
        """People per frame; frames are (H, W, 3) RGB uint8, of any size."""
        ...


def boxes_of(people: list[Person]) -> np.ndarray:
    """(N, 4) xyxy boxes of a frame's people (empty (0, 4) when nobody)."""
    return np.array([p.box for p in people], dtype=np.float64).reshape(-1, 4)


def scores_of(people: list[Person]) -> np.ndarray:
    """(N,) person scores."""
    return np.array([p.score for p in people], dtype=np.float64)


def keypoints_of(people: list[Person]) -> np.ndarray:
    """(N, 17, 2) keypoints."""
    return np.array([p.keypoints for p in people], dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 2)


def keypoint_scores_of(people: list[Person]) -> np.ndarray:
    """(N, 17) keypoint scores."""
    return np.array([p.keypoint_scores for p in people], dtype=np.float64).reshape(-1, NUM_KEYPOINTS)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one xyxy box with each of (N, 4) boxes."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(box[0], boxes[:, 0])
    y0 = np.maximum(box[1], boxes[:, 1])
    x1 = np.minimum(box[2], boxes[:, 2])
    y1 = np.minimum(box[3], boxes[:, 3])
    inter = (x1 - x0).clip(0) * (y1 - y0).clip(0)
    area = (box[2] - box[0]).clip(0) * (box[3] - box[1]).clip(0)
    areas = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> list[int]:
    """Greedy non-maximum suppression; indices kept, highest score first."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    keep: list[int] = []
    while len(order):
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[box_iou(boxes[i], boxes[rest]) <= iou_threshold]
    return keep


# Duplicate suppression IoU of every backend. Not from the paper. Two real people side by side
# overlap far less than one person found twice (measured duplicate of MoveNet: IoU ~0.6); 0.45 is
# the IoU the official YOLOX demo suppresses at, so one value serves every backend.
NMS_IOU = 0.45


def suppress_duplicates(people: list[Person], iou_threshold: float = NMS_IOU) -> list[Person]:
    """The people whose box overlaps no better-scored person's box by more than `iou_threshold`,
    best first."""
    if len(people) < 2:
        return list(people)
    return [people[i] for i in nms(boxes_of(people), scores_of(people), iou_threshold)]


POSE_BACKENDS: tuple[str, ...] = ("detector_movenet", "movenet", "onnx", "mmpose", "batched")


def make_pose_estimator(kind: str, **settings: Any) -> PoseEstimator:
    """Build the pose backend named `kind` with its settings (see each backend's constructor).

    ``make_pose_estimator("detector_movenet", cache_dir=..., detector_path=...)`` (YOLOX-nano + MoveNet),
    ``make_pose_estimator("movenet", cache_dir=...)``,
    ``make_pose_estimator("onnx", detector_path=..., pose_path=..., device="cuda")``,
    ``make_pose_estimator("mmpose", pose2d="rtmpose-m_8xb256-420e_coco-256x192", device="cuda:0")``.
    """
    if kind == "detector_movenet":
        from haic_resources.pose.detector_movenet import DetectorMoveNet

        return DetectorMoveNet(**settings)
    if kind == "movenet":
        from haic_resources.pose.movenet import MoveNetMultiPose

        return MoveNetMultiPose(**settings)
    if kind == "onnx":
        from haic_resources.pose.rtmpose_onnx import OnnxDetectorRTMPose

        return OnnxDetectorRTMPose(**settings)
    if kind == "mmpose":
        from haic_resources.pose.mmpose_inferencer import MMPoseEstimator

        return MMPoseEstimator(**settings)
    if kind == "batched":
        from haic_resources.pose.batched import BatchedDetectorPose

        return BatchedDetectorPose(**settings)
    raise ValueError(f"unknown pose backend {kind!r}; choose one of {POSE_BACKENDS}")
