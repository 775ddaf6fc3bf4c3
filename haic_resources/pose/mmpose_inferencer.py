"""Optional pose backend on OpenMMLab's mmpose (`mmpose.apis.init_model` + `inference_topdown`).

Not part of the default install (extra ``mmpose``: torch, mmengine, mmcv, mmdet, mmpose; mmcv has no
prebuilt wheel on PyPI, see the README). Imported only when this backend is constructed.

Everything comes from settings, nothing is downloaded:
- pose_config: an mmpose config file (e.g. the RTMPose-t config inside the mmpose wheel,
  ``mmpose/.mim/configs/body_2d_keypoint/rtmpose/coco/rtmpose-t_8xb256-420e_coco-256x192.py``);
- pose_checkpoint: its weights (path or s3://); None only with random_weights=True (benchmarks:
  real compute, meaningless keypoints). init_model clears the backbone's "Pretrained" init, so a
  model without checkpoint fetches nothing either;
- people: mmdet (det_config + det_checkpoint, through `mmdet.apis.init_detector`) or, without
  det_config, the YOLOX/RTMDet ONNX file at detector_path (the `onnx` backend's detector).
A missing file fails at construction with its path.
"""

from __future__ import annotations

import os

import numpy as np

from haic_resources.pose.estimator import NMS_IOU, NUM_KEYPOINTS, Person, nms, suppress_duplicates
from haic_resources.pose.rtmpose_onnx import OnnxPersonDetector, resolve_model_file
from haic_resources.storage.s3 import S3Settings

INSTALL_HINT = (
    "the 'mmpose' pose backend needs the OpenMMLab stack, which is not installed: `uv sync --extra mmpose` "
    "(torch, mmengine, mmcv-lite, mmdet, mmpose), and on a GPU host a full mmcv 2.1 built once into the "
    "deployment image (README, 'Pose on GPUs'). Or use the 'batched' or 'onnx' backend"
)


def _allow_mmcv_lite() -> None:
    """Let mmpose import under mmcv-lite (pure Python, no compiled ops; the only mmcv on PyPI with wheels).

    mmpose 1.3.2 imports compiled mmcv ops when `mmpose.apis` is imported, though RTMPose uses none:
    `mmcv.ops.MultiScaleDeformableAttention` (EDPose) and, through mmdet's CSPDarknet layers that
    RTMPose's CSPNeXt backbone imports, `mmcv.ops.nms`. `mmcv.ops` fails to import without the
    compiled `mmcv._ext`. Where `mmcv._ext` is missing, `mmcv.ops` and its submodules become modules
    whose every op raises when used, so RTMPose runs and a model needing a compiled op fails saying why.
    """
    import importlib.abc
    import importlib.machinery
    import importlib.util
    import sys
    import types

    if "mmcv.ops" in sys.modules or importlib.util.find_spec("mmcv") is None:
        return
    if importlib.util.find_spec("mmcv._ext") is not None:
        return  # full mmcv: its real ops

    def placeholder(module: str):
        def op(name: str):
            if name.startswith("_"):
                raise AttributeError(name)

            def missing(*args, **kwargs):
                raise ImportError(f"{module}.{name} needs the full mmcv (compiled ops); this host has mmcv-lite")
            return type(name, (), {"__new__": lambda cls, *a, **k: missing(), "__call__": missing})

        return op

    class Placeholders(importlib.abc.MetaPathFinder, importlib.abc.Loader):
        def find_spec(self, fullname, path=None, target=None):
            if fullname == "mmcv.ops" or fullname.startswith("mmcv.ops."):
                return importlib.machinery.ModuleSpec(fullname, self, is_package=True)
            return None

        def create_module(self, spec):
            module = types.ModuleType(spec.name)
            module.__file__ = "<placeholder: mmcv-lite has no compiled ops>"
            module.__path__ = []
            module.__getattr__ = placeholder(spec.name)  # type: ignore[method-assign]
            return module

        def exec_module(self, module):
            pass

    sys.meta_path.insert(0, Placeholders())


class MMPoseEstimator:
    def __init__(
        self,
        pose_config: str | os.PathLike | None = None,
        pose_checkpoint: str | os.PathLike | None = None,
        det_config: str | os.PathLike | None = None,
        det_checkpoint: str | os.PathLike | None = None,
        detector_path: str | os.PathLike | None = None,
        device: str = "cpu",
        min_person_score: float = 0.3,
        nms_threshold: float = NMS_IOU,
        max_people: int = 20,
        input_long_side: int | None = 640,
        random_weights: bool = False,
        cache_dir: str | os.PathLike | None = None,
        s3: S3Settings = S3Settings(),
    ) -> None:
        if pose_config is None:
            raise ValueError("the mmpose backend needs pose_config (HAIC_POSE_CONFIG): an mmpose config file")
        if pose_checkpoint is None and not random_weights:
            raise ValueError("the mmpose backend needs pose_checkpoint (HAIC_POSE_MODEL): models are never "
                             "downloaded")
        if det_config is None and detector_path is None:
            raise ValueError("the mmpose backend needs a person detector: det_config + det_checkpoint (mmdet) "
                             "or detector_path (a YOLOX/RTMDet .onnx)")
        resolve = lambda p: str(resolve_model_file(p, cache_dir, s3.client))  # noqa: E731
        config = resolve(pose_config)
        checkpoint = resolve(pose_checkpoint) if pose_checkpoint is not None else None
        det_files = (resolve(det_config), resolve(det_checkpoint)) if det_config is not None else None
        if det_config is not None and det_checkpoint is None:
            raise ValueError("det_config needs det_checkpoint: models are never downloaded")
        try:
            _allow_mmcv_lite()
            from mmpose.apis import inference_topdown, init_model
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
        self._inference_topdown = inference_topdown
        self.model = init_model(config, checkpoint, device=device)
        self.device_used = "cuda" if next(self.model.parameters()).is_cuda else "cpu"
        if det_files is not None:
            from mmdet.apis import inference_detector, init_detector

            self._mmdet = (init_detector(det_files[0], det_files[1], device=device), inference_detector)
            self.detector = None
        else:
            self._mmdet = None
            self.detector = OnnxPersonDetector(detector_path, "yolox", "cuda" if self.device_used == "cuda" else "cpu",
                                               min_person_score, nms_threshold, max_people, cache_dir, s3)
        self.min_person_score = min_person_score
        self.nms_threshold = nms_threshold
        self.max_people = max_people
        self.input_long_side = input_long_side

    def _people_boxes(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.detector is not None:
            return self.detector.detect(frame)
        model, inference_detector = self._mmdet
        found = inference_detector(model, frame[:, :, ::-1].copy()).pred_instances.cpu().numpy()
        keep = (found.labels == 0) & (found.scores >= self.min_person_score)
        boxes, scores = found.bboxes[keep].astype(np.float64), found.scores[keep].astype(np.float64)
        idx = nms(boxes, scores, self.nms_threshold)[: self.max_people]
        return boxes[idx], scores[idx]

    def estimate(self, frames: list[np.ndarray]) -> list[list[Person]]:
        out: list[list[Person]] = []
        for frame in frames:
            boxes, scores = self._people_boxes(frame)
            if len(boxes) == 0:
                out.append([])
                continue
            # mmpose reads ndarray inputs as BGR (OpenCV convention); our frames are RGB.
            samples = self._inference_topdown(self.model, frame[:, :, ::-1].copy(), boxes, bbox_format="xyxy")
            people = []
            for box, score, sample in zip(boxes, scores, samples):
                kps = np.asarray(sample.pred_instances.keypoints, dtype=np.float64).reshape(NUM_KEYPOINTS, 2)
                kss = np.asarray(sample.pred_instances.keypoint_scores, dtype=np.float64).reshape(NUM_KEYPOINTS)
                people.append(Person(box=box, score=float(score), keypoints=kps, keypoint_scores=np.clip(kss, 0, 1)))
            out.append(suppress_duplicates(people, self.nms_threshold))
        return out
