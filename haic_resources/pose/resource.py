"""The people model as a Dagster resource: a YOLOX/RTMDet detector + MoveNet (default: the shipped YOLOX-nano),
MoveNet alone, YOLOX/RTMDet + RTMPose (ONNX, or batched on a GPU), mmpose."""

from dagster import ConfigurableResource
from pydantic import Field

from haic_resources.pose.estimator import NMS_IOU, PoseEstimator
from haic_resources.pose.settings import PoseSettings, make_estimator
from haic_resources.storage.s3 import S3Settings


class PoseResource(ConfigurableResource):
    backend: str = Field(default="detector_movenet",
                         description="detector_movenet (default: a YOLOX/RTMDet detector counts the people, crowds "
                                     "included, on tiles; MoveNet gives each one's keypoints on its crop; the "
                                     "detector file ships: YOLOX-nano) | movenet (MoveNet MultiPose alone, whole "
                                     "frame and, for crowds, tiles; see movenet_tiles) | onnx (YOLOX/RTMDet + "
                                     "RTMPose, as in the paper) | batched (the same, many clips per "
                                     "network call, on a GPU) | mmpose")
    input_long_side: int | None = Field(default=None, description="model input long side; empty = backend default")
    min_person_score: float = Field(default=0.2, description="people below this score are not reported at all")
    nms_iou: float | None = Field(default=None, description="boxes overlapping a better one by more than this IoU "
                                                            f"are one person found twice (every backend); empty = {NMS_IOU}")
    movenet_tiles: int = Field(default=2, description="movenet: on frames where the whole frame shows 2 people or "
                                                      "more, also look at N × N overlapping tiles, so that a crowd's "
                                                      "small people are counted (1 = whole frame only)")
    detector_tiles: int = Field(default=2, description="detector_movenet: on frames where the whole frame shows 2 "
                                                       "people or more, the detector also looks at N × N "
                                                       "overlapping tiles (1 = whole frame only)")
    detector_model: str | None = Field(default=None, description="onnx, detector_movenet: detector .onnx (path or "
                                                                 "s3://), e.g. YOLOX-nano; detector_movenet: empty "
                                                                 "= the shipped YOLOX-nano")
    pose_model: str | None = Field(default=None, description="onnx, batched: RTMPose .onnx; mmpose: checkpoint "
                                                             "(path or s3://)")
    detector_kind: str = Field(default="yolox", description="onnx: yolox | rtmdet")
    device: str = Field(default="cpu", description="cpu | cuda | auto (what is asked; describe() says what is used)")
    engine: str = Field(default="auto", description="batched: torch (onnx2torch, GPU) | onnxruntime | auto")
    half: bool = Field(default=False, description="batched: fp16 networks on a GPU")
    pose_config: str | None = Field(default=None, description="mmpose: pose model config file (path or s3://)")
    detector_config: str | None = Field(default=None, description="mmpose: mmdet config (path or s3://); "
                                                                   "empty = detector_model is a YOLOX .onnx")
    cache_dir: str = Field(description="where model files are extracted or copied (HAIC_HOME/cache/models)")
    s3_endpoint_url: str | None = Field(default=None, description="onnx: S3 endpoint of s3:// model files "
                                                                  "(MinIO, moto); empty = AWS")
    s3_region: str | None = Field(default=None, description="onnx: S3 region of s3:// model files")

    def settings(self) -> PoseSettings:
        """This model as plain settings, for `make_estimator` here or in a child process."""
        return PoseSettings(cache_dir=self.cache_dir, backend=self.backend, input_long_side=self.input_long_side,
                            min_person_score=self.min_person_score,
                            nms_iou=NMS_IOU if self.nms_iou is None else self.nms_iou,
                            movenet_tiles=self.movenet_tiles, detector_tiles=self.detector_tiles,
                            detector_model=self.detector_model,
                            pose_model=self.pose_model, detector_kind=self.detector_kind, device=self.device,
                            engine=self.engine, half=self.half, pose_config=self.pose_config,
                            detector_config=self.detector_config,
                            s3=S3Settings(endpoint_url=self.s3_endpoint_url, region_name=self.s3_region))

    def estimator(self) -> PoseEstimator:
        return make_estimator(self.settings())

    def describe(self) -> str:
        if self.backend in ("onnx", "batched"):
            models = f" {self.detector_model} + {self.pose_model}"
        elif self.backend == "detector_movenet":
            tiles = f", {self.detector_tiles}×{self.detector_tiles} tiles for crowds" if self.detector_tiles > 1 else ""
            models = f" {self.detector_model or 'shipped YOLOX-nano'}{tiles} + MoveNet"
        elif self.backend == "movenet" and self.movenet_tiles > 1:
            models = f" + {self.movenet_tiles}×{self.movenet_tiles} tiles for crowds"
        else:
            models = ""
        estimator = self.estimator()
        # The device the model really runs on: a "cuda" request that fell back says "cpu".
        return f"{self.backend}{models} (long side {estimator.input_long_side}, {estimator.device_used})"
