"""Human existence filter: every sampled frame must show 1 to 5 people covering ≥ 10 % of it.

Paper: sample 16 frames uniformly from each clip; keep the clip only if every sampled frame has
1 to 5 people and the people's boxes cover at least 10 % of the frame.

Our readings:
- "cover": the area covered by at least one person's box, clipped to the frame, over the frame area
  (`coverage_mode="union"`, never more than 1.0). `"sum"` adds the boxes' areas instead, so that
  overlapping boxes count twice (boxes on a close-up of two hands summed to 0.89–1.39 of a frame). Both are
  recorded for every frame, whichever decides.
- "people": a detection is a person when its score is at least `min_person_score` and its pose model
  gives it at least `min_person_keypoints` keypoints scored at least `person_keypoint_score` (for the
  detector backends, the keypoint model run on the detection's crop). A box without a body (the
  detector's near full-frame box on two hands) is recorded, per frame, as not a person with its score,
  confident keypoints and area, and is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from haic_core.decisions import Decision, dropped, kept

CoverageMode = Literal["sum", "union"]

MIN_PEOPLE = 1
MAX_PEOPLE = 5
MIN_COVERAGE = 0.10
# Not from the paper (it does not say how confident a detection must be). Measured with MoveNet
# MultiPose on the real test clips: real people score 0.20–0.79 (small pedestrians 0.20–0.44),
# non-human rows 0.10–0.17 except a cartoon rabbit (≤ 0.30); 0.2 keeps the real people.
MIN_PERSON_SCORE = 0.2
# Not from the paper: a person has a body. 6 confident keypoints is a third of the body, what the motion
# filters need of one pair (motion.MIN_VALID_KEYPOINTS), and the keypoint score cut is theirs too
# (motion.MIN_KEYPOINT_SCORE): a person counted here is one whose motion can be measured. Measured
# (YOLOX-nano + MoveNet on each crop, the shared clips' 16 samples): people seen whole 14–17 (juggler, dog
# walker, drinker, huggers), a head and shoulders 6–7, boxes on a face-and-hand close-up 2–5, on hands and a
# headless torso 0–3, on a cockatoo, a slideshow or a cartoon screen 0–2. The price: people MoveNet cannot
# pose (pedestrians 16–30 px tall, blurred or close-up arm wrestlers: 0–5) are not counted either.
MIN_PERSON_KEYPOINTS = 6
PERSON_KEYPOINT_SCORE = 0.3
NUM_KEYPOINTS = 17


def clip_boxes_to_frame(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """(N, 4) xyxy boxes clipped to [0, width] × [0, height]."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.clip(boxes, 0.0, [width, height, width, height])


def _union_area(boxes: np.ndarray) -> float:
    """Exact area of a union of axis-aligned boxes (coordinate compression; N is tiny)."""
    if len(boxes) == 0:
        return 0.0
    xs = np.unique(boxes[:, [0, 2]])
    ys = np.unique(boxes[:, [1, 3]])
    area = 0.0
    for x0, x1 in zip(xs[:-1], xs[1:]):
        cx = (x0 + x1) / 2
        for y0, y1 in zip(ys[:-1], ys[1:]):
            cy = (y0 + y1) / 2
            inside = (boxes[:, 0] <= cx) & (cx <= boxes[:, 2]) & (boxes[:, 1] <= cy) & (cy <= boxes[:, 3])
            if inside.any():
                area += (x1 - x0) * (y1 - y0)
    return float(area)


def box_coverage(
    boxes: np.ndarray, width: float, height: float, mode: CoverageMode = "union"
) -> float:
    """Fraction of the frame covered by person boxes (see module docstring for `mode`)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}×{height}")
    clipped = clip_boxes_to_frame(boxes, width, height)
    if mode == "sum":
        areas = (clipped[:, 2] - clipped[:, 0]).clip(0) * (clipped[:, 3] - clipped[:, 1]).clip(0)
        covered = float(areas.sum())
    elif mode == "union":
        covered = _union_area(clipped)
    else:
        raise ValueError(f"coverage mode must be 'sum' or 'union', got {mode!r}")
    return covered / (float(width) * float(height))


def confident_keypoints(keypoint_scores: np.ndarray, min_keypoint_score: float = PERSON_KEYPOINT_SCORE) -> np.ndarray:
    """(N,) number of keypoints of each of (N, 17) scored at least `min_keypoint_score`."""
    return (_per_person(keypoint_scores, len(keypoint_scores)) >= min_keypoint_score).sum(axis=1)


def _per_person(keypoint_scores, people: int) -> np.ndarray:
    """(people, 17) keypoint scores (an empty frame's too)."""
    return np.asarray(keypoint_scores, dtype=np.float64).reshape(people, NUM_KEYPOINTS)


def person_mask(scores: np.ndarray, keypoint_scores: np.ndarray | None, min_person_score: float = MIN_PERSON_SCORE,
                min_person_keypoints: int = MIN_PERSON_KEYPOINTS,
                person_keypoint_score: float = PERSON_KEYPOINT_SCORE) -> np.ndarray:
    """(N,) whether each detection is a person: score ≥ min_person_score and (when keypoint scores are
    given) at least `min_person_keypoints` keypoints scored ≥ person_keypoint_score."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    mask = scores >= min_person_score
    if keypoint_scores is not None and min_person_keypoints > 0:
        mask &= confident_keypoints(_per_person(keypoint_scores, len(scores)), person_keypoint_score) >= min_person_keypoints
    return mask


@dataclass(frozen=True)
class FramePeople:
    """What the presence test sees in one frame."""

    count: int
    coverage: float          # by the decision's coverage mode
    coverage_union: float
    coverage_sum: float
    not_people: list         # [score, confident keypoints, box area / frame area] of boxes without a body


def frame_people(boxes: np.ndarray, scores: np.ndarray, width: float, height: float,
                 keypoint_scores: np.ndarray | None = None, *, min_person_score: float = MIN_PERSON_SCORE,
                 min_person_keypoints: int = MIN_PERSON_KEYPOINTS,
                 person_keypoint_score: float = PERSON_KEYPOINT_SCORE,
                 coverage_mode: CoverageMode = "union") -> FramePeople:
    """The people of one frame (see the module docstring), their count and both coverages.

    Boxes and the frame size must be in the same pixels (e.g. both of the resized frame).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    if coverage_mode not in ("sum", "union"):
        raise ValueError(f"coverage mode must be 'sum' or 'union', got {coverage_mode!r}")
    if keypoint_scores is not None:
        keypoint_scores = _per_person(keypoint_scores, len(scores))
    people = person_mask(scores, keypoint_scores, min_person_score, min_person_keypoints, person_keypoint_score)
    body_less = (scores >= min_person_score) & ~people
    confident = (confident_keypoints(keypoint_scores, person_keypoint_score) if keypoint_scores is not None
                 else np.zeros(len(scores), int))
    union, total = (box_coverage(boxes[people], width, height, mode) for mode in ("union", "sum"))
    not_people = [[round(float(scores[k]), 4), int(confident[k]), round(box_coverage(boxes[k], width, height), 4)]
                  for k in np.flatnonzero(body_less)]
    return FramePeople(int(people.sum()), union if coverage_mode == "union" else total, union, total, not_people)


def frame_presence(
    boxes: np.ndarray,
    scores: np.ndarray,
    width: float,
    height: float,
    min_person_score: float = MIN_PERSON_SCORE,
    coverage_mode: CoverageMode = "union",
    keypoint_scores: np.ndarray | None = None,
    min_person_keypoints: int = MIN_PERSON_KEYPOINTS,
    person_keypoint_score: float = PERSON_KEYPOINT_SCORE,
) -> tuple[int, float]:
    """(people count, box coverage) of one frame (`frame_people`)."""
    seen = frame_people(boxes, scores, width, height, keypoint_scores, min_person_score=min_person_score,
                        min_person_keypoints=min_person_keypoints, person_keypoint_score=person_keypoint_score,
                        coverage_mode=coverage_mode)
    return seen.count, seen.coverage


def presence_decision(
    clip_id: str,
    boxes_per_frame: list[np.ndarray],
    scores_per_frame: list[np.ndarray],
    width: float,
    height: float,
    *,
    keypoint_scores_per_frame: list[np.ndarray] | None = None,
    min_people: int = MIN_PEOPLE,
    max_people: int = MAX_PEOPLE,
    min_coverage: float = MIN_COVERAGE,
    min_person_score: float = MIN_PERSON_SCORE,
    min_person_keypoints: int = MIN_PERSON_KEYPOINTS,
    person_keypoint_score: float = PERSON_KEYPOINT_SCORE,
    coverage_mode: CoverageMode = "union",
    timestamps: list[float] | None = None,
    parent_id: str | None = None,
) -> Decision:
    """Keep the clip only if every sampled frame has min..max people and coverage ≥ min_coverage.

    The tests run in the order count-too-low, count-too-high, coverage; the first that fails
    decides, and `value` is that test's worst frame (fewest people, most people, least
    coverage). `detail` keeps the per-frame counts and coverages (union and sum), and the boxes that
    were not people, for every frame either way. Without `keypoint_scores_per_frame` (a detector that
    gives no keypoints) people are counted on their score alone, and `min_person_keypoints` is recorded
    as None.
    """
    if len(boxes_per_frame) != len(scores_per_frame):
        raise ValueError("boxes_per_frame and scores_per_frame differ in length")
    if not boxes_per_frame:
        raise ValueError("presence needs at least one sampled frame")
    if keypoint_scores_per_frame is not None and len(keypoint_scores_per_frame) != len(boxes_per_frame):
        raise ValueError("keypoint_scores_per_frame and boxes_per_frame differ in length")
    frames = [frame_people(boxes, scores, width, height,
                           None if keypoint_scores_per_frame is None else keypoint_scores_per_frame[f],
                           min_person_score=min_person_score, min_person_keypoints=min_person_keypoints,
                           person_keypoint_score=person_keypoint_score, coverage_mode=coverage_mode)
              for f, (boxes, scores) in enumerate(zip(boxes_per_frame, scores_per_frame))]
    counts, coverages = [f.count for f in frames], [f.coverage for f in frames]
    detail = {
        "people_per_frame": counts,
        "coverage_per_frame": [round(c, 6) for c in coverages],
        "coverage_union_per_frame": [round(f.coverage_union, 6) for f in frames],
        "coverage_sum_per_frame": [round(f.coverage_sum, 6) for f in frames],
        "not_people_per_frame": [f.not_people for f in frames],
        "min_people": min_people,
        "max_people": max_people,
        "min_coverage": min_coverage,
        "min_person_score": min_person_score,
        "min_person_keypoints": None if keypoint_scores_per_frame is None else min_person_keypoints,
        "person_keypoint_score": person_keypoint_score,
        "coverage_mode": coverage_mode,
    }
    if timestamps is not None:
        detail["timestamps_s"] = [round(float(t), 4) for t in timestamps]
    common = dict(item_kind="clip", parent_id=parent_id, detail=detail)

    fewest, most, least = min(counts), max(counts), min(coverages)
    if fewest < min_people:
        failing = [i for i, n in enumerate(counts) if n < min_people]
        detail["failing_frames"] = failing
        reason = f"people_count={fewest} < {min_people} in {len(failing)}/{len(counts)} sampled frames"
        return dropped(clip_id, reason, metric="people_count", value=float(fewest), threshold=float(min_people), **common)
    if most > max_people:
        failing = [i for i, n in enumerate(counts) if n > max_people]
        detail["failing_frames"] = failing
        reason = f"people_count={most} > {max_people} in {len(failing)}/{len(counts)} sampled frames"
        return dropped(clip_id, reason, metric="people_count", value=float(most), threshold=float(max_people), **common)
    if least < min_coverage:
        failing = [i for i, c in enumerate(coverages) if c < min_coverage]
        detail["failing_frames"] = failing
        reason = f"box_coverage={least:.4f} < {min_coverage} in {len(failing)}/{len(counts)} sampled frames"
        return dropped(clip_id, reason, metric="box_coverage", value=least, threshold=min_coverage, **common)
    reason = f"{fewest}..{most} people and box_coverage>={least:.4f} in all {len(counts)} sampled frames"
    return kept(clip_id, reason, metric="box_coverage", value=least, threshold=min_coverage, **common)
