"""A pose model as plain, picklable settings, and the one function that builds the model they describe.

`PoseResource` (Dagster) describes its model as `PoseSettings`; a child process of `run_isolated`
receives those settings and builds the same model with `make_estimator`. This module imports
neither Dagster (about 1.2 s to import, in every child) nor any backend runtime: a child pays only
for the backend it builds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from haic_resources.pose.estimator import NMS_IOU, PoseEstimator, make_pose_estimator
from haic_resources.storage.s3 import S3Settings


@dataclass(frozen=True)
class PoseSettings:
    """Everything needed to build one pose model (see `PoseResource` for what each field means)."""

    cache_dir: str
    backend: str = "detector_movenet"
    input_long_side: int | None = None
    min_person_score: float = 0.2
    nms_iou: float = NMS_IOU
    movenet_tiles: int = 2                 # movenet: tile grid side for crowds (1 = whole frame only)
    detector_tiles: int = 2                # detector_movenet: the detector's tile grid side for crowds (1 = none)
    detector_model: str | None = None
    pose_model: str | None = None
    detector_kind: str = "yolox"
    device: str = "cpu"
    engine: str = "auto"                   # batched: torch | onnxruntime | auto
    half: bool = False                     # batched: fp16 networks on a GPU
    pose_config: str | None = None         # mmpose: the pose model's config file
    detector_config: str | None = None     # mmpose: an mmdet config (else detector_model, an ONNX file)
    s3: S3Settings = field(default_factory=S3Settings)  # for s3:// model files


@lru_cache(maxsize=2)
def make_estimator(settings: PoseSettings) -> PoseEstimator:
    """The model `settings` describe, built once per process: model start-up costs more than a
    clip, so the Dagster process and every long-lived worker load it once."""
    options = {"cache_dir": settings.cache_dir, "min_person_score": settings.min_person_score,
               "nms_threshold": settings.nms_iou}
    if settings.input_long_side:
        options["input_long_side"] = settings.input_long_side
    if settings.backend == "movenet":
        options["tile_grid"] = settings.movenet_tiles
    elif settings.backend == "onnx":
        options.update(detector_path=settings.detector_model, pose_path=settings.pose_model,
                       detector_kind=settings.detector_kind, device=settings.device, s3=settings.s3)
    elif settings.backend == "detector_movenet":
        options.update(detector_path=settings.detector_model, detector_kind=settings.detector_kind,
                       device=settings.device, s3=settings.s3, tile_grid=settings.detector_tiles)
    elif settings.backend == "batched":
        options.update(detector_path=settings.detector_model, pose_path=settings.pose_model, device=settings.device,
                       engine=settings.engine, half=settings.half, s3=settings.s3)
    elif settings.backend == "mmpose":
        options.update(pose_config=settings.pose_config, pose_checkpoint=settings.pose_model,
                       det_config=settings.detector_config,
                       det_checkpoint=settings.detector_model if settings.detector_config else None,
                       detector_path=None if settings.detector_config else settings.detector_model,
                       device=settings.device, s3=settings.s3)
    return make_pose_estimator(settings.backend, **options)
