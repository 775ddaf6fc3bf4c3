"""Link people across adjacent 1 fps pose samples into tracklets by maximal IoU.

Paper: "link people across frames into tracklets by maximal IoU". Across several people that is an
assignment: of all ways to pair the people of two adjacent samples one to one, the pairing whose total
IoU is largest (`linking="assignment"`, the default; scipy's `linear_sum_assignment`). Pairs under
`min_iou` are never linked. Keypoint similarity (OKS of the keypoints confident in both samples) breaks
ties: it enters each pair's weight multiplied by `keypoint_tiebreak` (default 0.05), so it can only
decide between pairings whose total IoU differs by less than 0.05 per person, e.g. two people standing
close together, whose boxes overlap both of their next boxes about equally.

The earlier reading, `linking="greedy"`, links the largest IoU first, then the largest still available:
between two people whose boxes overlap it can give the first link to the wrong pair and force a swap
(two people exchanging identities reads as motion). Every linking records the links where the greedy
reading would have linked a person to someone else (`Linking.switches_avoided`).

A person left unmatched starts a new tracklet; a tracklet ends at the first sample where it is not
matched (no gap bridging), so every tracklet covers consecutive samples.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

LinkingMethod = Literal["assignment", "greedy"]

# Not from the paper. At 1 fps a running person's box moves a lot between samples; 0.1 keeps
# such links while refusing boxes that merely touch.
MIN_IOU = 0.1
# Not from the paper: the weight of keypoint similarity (0–1) beside IoU (0–1). Small, so that IoU decides
# and keypoints only break near ties (pairings within 0.05 of total IoU per person).
KEYPOINT_TIEBREAK = 0.05
# Keypoints compared for similarity: confident in both samples (the motion filters' cut).
TIEBREAK_KEYPOINT_SCORE = 0.3
# COCO's per-keypoint OKS sigmas (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles).
COCO_SIGMAS = np.array([0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107,
                        0.087, 0.087, 0.089, 0.089])


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


def keypoint_similarity_matrix(boxes_a: np.ndarray, keypoints_a: np.ndarray, scores_a: np.ndarray,
                               boxes_b: np.ndarray, keypoints_b: np.ndarray, scores_b: np.ndarray,
                               min_keypoint_score: float = TIEBREAK_KEYPOINT_SCORE) -> np.ndarray:
    """(len(a), len(b)) object keypoint similarity (COCO OKS, 0–1) over the keypoints confident in both,
    the scale being the mean of the two boxes' areas; 0 where no keypoint is confident in both.
    Boxes and keypoints in the same units (pixels, or both normalized)."""
    boxes_a, boxes_b = np.asarray(boxes_a, np.float64).reshape(-1, 4), np.asarray(boxes_b, np.float64).reshape(-1, 4)
    kp_a, kp_b = np.asarray(keypoints_a, np.float64).reshape(-1, 17, 2), np.asarray(keypoints_b, np.float64).reshape(-1, 17, 2)
    ok_a = np.asarray(scores_a, np.float64).reshape(-1, 17) >= min_keypoint_score
    ok_b = np.asarray(scores_b, np.float64).reshape(-1, 17) >= min_keypoint_score
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]).clip(0) * (boxes_a[:, 3] - boxes_a[:, 1]).clip(0)
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]).clip(0) * (boxes_b[:, 3] - boxes_b[:, 1]).clip(0)
    d2 = ((kp_a[:, None] - kp_b[None, :]) ** 2).sum(axis=3)  # (A, B, 17)
    scale = np.maximum((area_a[:, None] + area_b[None, :]) / 2, 1e-12)[:, :, None]
    similarity = np.exp(-d2 / (2 * scale * (2 * COCO_SIGMAS) ** 2))
    both = ok_a[:, None] & ok_b[None, :]
    count = both.sum(axis=2)
    return np.divide((similarity * both).sum(axis=2), count, out=np.zeros(count.shape), where=count > 0)


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


def assignment_matches(ious: np.ndarray, similarity: np.ndarray | None = None, min_iou: float = MIN_IOU,
                       keypoint_tiebreak: float = KEYPOINT_TIEBREAK) -> list[tuple[int, int]]:
    """(prev index, curr index) links of the one-to-one pairing of largest total IoU (+ `keypoint_tiebreak`
    × keypoint similarity), among pairs with IoU ≥ min_iou; sorted by prev index."""
    ious = np.asarray(ious, dtype=np.float64)
    allowed = (ious >= min_iou) & (ious > 0.0)
    if not allowed.any():
        return []
    weight = ious + (keypoint_tiebreak * similarity if similarity is not None else 0.0)
    # A forbidden pair weighs 0: linking it adds nothing, so the optimum is that over allowed pairs.
    rows, cols = linear_sum_assignment(np.where(allowed, weight, 0.0), maximize=True)
    return sorted((int(i), int(j)) for i, j in zip(rows, cols) if allowed[i, j])


@dataclass(frozen=True)
class Linking:
    """Track ids per sample, and where the chosen linking differs from other readings.

    switches_avoided: (sample, people) where the greedy reading would have linked `people` current people
        to another previous person than the assignment did (0 entries under `linking="greedy"`).
    tiebreaks: (sample, people) where keypoint similarity changed the link of `people` people from the
        IoU-only assignment.
    """

    ids_per_frame: list[np.ndarray]
    method: str = "assignment"
    switches_avoided: list[tuple[int, int]] = field(default_factory=list)
    tiebreaks: list[tuple[int, int]] = field(default_factory=list)

    def as_detail(self) -> dict:
        return {"linking": self.method,
                "switches_avoided": sum(n for _, n in self.switches_avoided),
                "switches_avoided_at": [s for s, _ in self.switches_avoided],
                "keypoint_tiebreaks": sum(n for _, n in self.tiebreaks)}


def _relinked(links: list[tuple[int, int]], other: list[tuple[int, int]]) -> int:
    """Current people that `other` links to a different previous person than `links` does."""
    mine, theirs = {j: i for i, j in links}, {j: i for i, j in other}
    return sum(1 for j, i in mine.items() if j in theirs and theirs[j] != i)


def link_people(boxes_per_frame: list[np.ndarray], min_iou: float = MIN_IOU, *,
                keypoints_per_frame: list[np.ndarray] | None = None,
                keypoint_scores_per_frame: list[np.ndarray] | None = None,
                method: LinkingMethod = "assignment", keypoint_tiebreak: float = KEYPOINT_TIEBREAK,
                tiebreak_keypoint_score: float = TIEBREAK_KEYPOINT_SCORE) -> Linking:
    """Track ids of every person in every frame (ids 0, 1, … in order of first appearance), linked by
    `method`; keypoints (and their scores) are optional and serve only as the assignment's tie-break."""
    if method not in ("assignment", "greedy"):
        raise ValueError(f"linking must be 'assignment' or 'greedy', got {method!r}")
    with_keypoints = keypoints_per_frame is not None and keypoint_scores_per_frame is not None
    ids_per_frame: list[np.ndarray] = []
    switches, tiebreaks = [], []
    next_id = 0
    prev = None
    for f, boxes in enumerate(boxes_per_frame):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        curr = (boxes, keypoints_per_frame[f], keypoint_scores_per_frame[f]) if with_keypoints else (boxes,)
        ids = np.full(len(boxes), -1, dtype=np.int64)
        if prev is not None and len(prev[0]) and len(boxes):
            greedy = greedy_iou_matches(prev[0], boxes, min_iou)
            if method == "greedy":
                links = greedy
            else:
                ious = iou_matrix(prev[0], boxes)
                similarity = (keypoint_similarity_matrix(*prev, *curr, tiebreak_keypoint_score)
                              if with_keypoints and keypoint_tiebreak else None)
                links = assignment_matches(ious, similarity, min_iou, keypoint_tiebreak)
                if (n := _relinked(links, greedy)):
                    switches.append((f, n))
                if similarity is not None and (n := _relinked(links, assignment_matches(ious, None, min_iou))):
                    tiebreaks.append((f, n))
            for i, j in links:
                ids[j] = prev_ids[i]
        for j in np.flatnonzero(ids < 0):
            ids[j] = next_id
            next_id += 1
        ids_per_frame.append(ids)
        prev, prev_ids = curr, ids
    return Linking(ids_per_frame, method, switches, tiebreaks)


def link_tracklets(boxes_per_frame: list[np.ndarray], min_iou: float = MIN_IOU, **options) -> list[np.ndarray]:
    """Track id of every person in every frame (ids 0, 1, … in order of first appearance); `options` as
    `link_people`'s."""
    return link_people(boxes_per_frame, min_iou, **options).ids_per_frame


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
