"""Link people across adjacent 1 fps pose samples into tracklets by maximal IoU.

Paper: "link people across frames into tracklets by maximal IoU". We link greedily: all
(previous person, current person) pairs of two adjacent samples are sorted by IoU, highest
first, and a pair is linked when neither side is linked yet and its IoU ≥ `min_iou`. Greedy
is what "maximal IoU" says literally (each link is the largest IoU still available); with ≤ 6
people per frame it almost always equals the Hungarian optimum of total IoU, and it is
deterministic (ties broken by lower indices). A person left unmatched starts a new tracklet;
a tracklet ends at the first sample where it is not matched (no gap bridging), so every
tracklet covers consecutive samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Not from the paper. At 1 fps a running person's box moves a lot between samples; 0.1 keeps
# such links while refusing boxes that merely touch.
MIN_IOU = 0.1


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = (x1 - x0).clip(0) * (y1 - y0).clip(0)
    area_a = ((a[:, 2] - a[:, 0]).clip(0) * (a[:, 3] - a[:, 1]).clip(0))[:, None]
    area_b = ((b[:, 2] - b[:, 0]).clip(0) * (b[:, 3] - b[:, 1]).clip(0))[None, :]
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_iou_matches(prev: np.ndarray, curr: np.ndarray, min_iou: float = MIN_IOU) -> list[tuple[int, int]]:
    """(prev index, curr index) links, largest IoU first, one link per box, IoU ≥ min_iou."""
    ious = iou_matrix(prev, curr)
    order = sorted(
        ((ious[i, j], i, j) for i in range(ious.shape[0]) for j in range(ious.shape[1])),
        key=lambda t: (-t[0], t[1], t[2]),
    )
    used_prev, used_curr, links = set(), set(), []
    for iou, i, j in order:
        if iou < min_iou or iou <= 0.0:
            break
        if i in used_prev or j in used_curr:
            continue
        used_prev.add(i)
        used_curr.add(j)
        links.append((i, j))
    return links


def link_tracklets(boxes_per_frame: list[np.ndarray], min_iou: float = MIN_IOU) -> list[np.ndarray]:
    """Track id of every person in every frame (ids 0, 1, … in order of first appearance)."""
    ids_per_frame: list[np.ndarray] = []
    next_id = 0
    prev_boxes = np.zeros((0, 4))
    prev_ids = np.zeros(0, dtype=np.int64)
    for boxes in boxes_per_frame:
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids = np.full(len(boxes), -1, dtype=np.int64)
        for i, j in greedy_iou_matches(prev_boxes, boxes, min_iou):
            ids[j] = prev_ids[i]
        for j in np.flatnonzero(ids < 0):
            ids[j] = next_id
            next_id += 1
        ids_per_frame.append(ids)
        prev_boxes, prev_ids = boxes, ids
    return ids_per_frame


@dataclass(frozen=True)
class Track:
    """One tracklet: a person over consecutive samples.

    frame_indices (T,), boxes (T, 4), keypoints (T, 17, 2), keypoint_scores (T, 17); keypoints
    in whatever units were given (normalized x/W, y/H for the motion filters).
    """

    track_id: int
    frame_indices: np.ndarray
    boxes: np.ndarray
    keypoints: np.ndarray
    keypoint_scores: np.ndarray

    def __len__(self) -> int:
        return len(self.frame_indices)


def build_tracks(
    track_ids_per_frame: list[np.ndarray],
    boxes_per_frame: list[np.ndarray],
    keypoints_per_frame: list[np.ndarray],
    keypoint_scores_per_frame: list[np.ndarray],
) -> list[Track]:
    """Gather per-frame people into `Track`s, ordered by track id; a frame's position in the
    lists is its frame index. The one builder of `Track`s: stored track rows come here through
    `haic_core.accumulation.pose_rows.tracks_from_rows`."""
    rows: dict[int, list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]] = {}
    for f, (ids, boxes, kps, kss) in enumerate(
        zip(track_ids_per_frame, boxes_per_frame, keypoints_per_frame, keypoint_scores_per_frame)
    ):
        for k, tid in enumerate(np.asarray(ids).reshape(-1)):
            rows.setdefault(int(tid), []).append((f, np.asarray(boxes)[k], np.asarray(kps)[k], np.asarray(kss)[k]))
    return [
        Track(
            track_id=tid,
            frame_indices=np.array([r[0] for r in rs], dtype=np.int64),
            boxes=np.array([r[1] for r in rs], dtype=np.float64).reshape(-1, 4),
            keypoints=np.array([r[2] for r in rs], dtype=np.float64).reshape(-1, 17, 2),
            keypoint_scores=np.array([r[3] for r in rs], dtype=np.float64).reshape(-1, 17),
        )
        for tid, rs in sorted(rows.items())
    ]
