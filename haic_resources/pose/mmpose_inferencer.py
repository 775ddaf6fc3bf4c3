"""Optional pose backend on OpenMMLab's `mmpose.apis.MMPoseInferencer` (GPU hosts).

Not part of the default install: the OpenMMLab stack (torch, mmcv, mmdet, mmpose) is heavy and
pinned to CUDA/torch versions. It is imported only when this backend is constructed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from haic_resources.pose.estimator import NMS_IOU, NUM_KEYPOINTS, Person, suppress_duplicates

INSTALL_HINT = (
    "the 'mmpose' pose backend needs the OpenMMLab stack, which is not installed. On a GPU host: "
    "`pip install torch torchvision` (matching your CUDA), then `pip install -U openmim && "
    "mim install mmengine 'mmcv>=2.0.1' 'mmdet>=3.1.0' 'mmpose>=1.1.0'`. "
    "Or use the 'onnx' backend (RTMDet/YOLOX + RTMPose on ONNX Runtime, CPU or CUDA), which "
    "needs only onnxruntime(-gpu)"
)


class MMPoseEstimator:
    """RTMPose (or any mmpose 2D model alias) with its detector, through MMPoseInferencer.

    pose2d: model alias or config (e.g. "rtmpose-m_8xb256-420e_coco-256x192", the paper's family);
    pose2d_weights: checkpoint path (local; nothing is fetched when given);
    det_model / det_weights: person detector (default: mmpose's RTMDet for "human");
    min_person_score: detector score cut (the inferencer's bbox_thr).
    nms_threshold: duplicate suppression IoU, applied to the inferencer's people as to every backend's.
    """

    def __init__(
        self,
        pose2d: str = "rtmpose-m_8xb256-420e_coco-256x192",
        pose2d_weights: str | None = None,
        det_model: str | None = None,
        det_weights: str | None = None,
        device: str = "cuda:0",
        min_person_score: float = 0.3,
        nms_threshold: float = NMS_IOU,
        input_long_side: int | None = None,
    ) -> None:
        try:
            from mmpose.apis import MMPoseInferencer
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
        self._inferencer = MMPoseInferencer(
            pose2d=pose2d,
            pose2d_weights=pose2d_weights,
            det_model=det_model,
            det_weights=det_weights,
            det_cat_ids=[0],
            device=device,
        )
        self.min_person_score = min_person_score
        self.nms_threshold = nms_threshold
        self.input_long_side = input_long_side

    def estimate(self, frames: list[np.ndarray]) -> list[list[Person]]:
        out: list[list[Person]] = []
        for frame in frames:
            # mmpose reads ndarray inputs as BGR (OpenCV convention); our frames are RGB.
            result = next(self._inferencer(frame[:, :, ::-1].copy(), bbox_thr=self.min_person_score, return_vis=False))
            people = []
            for inst in result["predictions"][0]:
                box = np.asarray(inst["bbox"][0], dtype=np.float64).reshape(4)
                kps = np.asarray(inst["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 2)
                kss = np.asarray(inst["keypoint_scores"], dtype=np.float64).reshape(NUM_KEYPOINTS)
                score = float(np.asarray(inst.get("bbox_score", 1.0)).reshape(-1)[0])
                people.append(Person(box=box, score=score, keypoints=kps, keypoint_scores=kss))
            out.append(suppress_duplicates(people, self.nms_threshold))
        return out
