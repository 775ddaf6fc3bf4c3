"""Human existence filter: every sampled frame must show 1 to 5 people covering ≥ 10 % of it.

Paper: sample 16 frames uniformly from each clip; keep the clip only if every sampled frame has
1 to 5 people and the people's boxes cover at least 10 % of the frame. Our reading of
"cover": the sum of the person boxes' areas, each clipped to the frame, over the frame area
(`coverage_mode="sum"`; overlapping boxes count twice). `coverage_mode="union"` measures the
area covered by at least one box instead (never more than 1.0).
"""

from __future__ import annotations

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
    boxes: np.ndarray, width: float, height: float, mode: CoverageMode = "sum"
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


def frame_presence(
    boxes: np.ndarray,
    scores: np.ndarray,
    width: float,
    height: float,
    min_person_score: float = MIN_PERSON_SCORE,
    coverage_mode: CoverageMode = "sum",
) -> tuple[int, float]:
    """(people count, box coverage) of one frame, counting people with score ≥ min_person_score.

    Boxes and the frame size must be in the same pixels (e.g. both of the resized frame).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores")
    people = boxes[scores >= min_person_score]
    return len(people), box_coverage(people, width, height, coverage_mode)


def presence_decision(
    clip_id: str,
    boxes_per_frame: list[np.ndarray],
    scores_per_frame: list[np.ndarray],
    width: float,
    height: float,
    *,
    min_people: int = MIN_PEOPLE,
    max_people: int = MAX_PEOPLE,
    min_coverage: float = MIN_COVERAGE,
    min_person_score: float = MIN_PERSON_SCORE,
    coverage_mode: CoverageMode = "sum",
    timestamps: list[float] | None = None,
    parent_id: str | None = None,
) -> Decision:
    """Keep the clip only if every sampled frame has min..max people and coverage ≥ min_coverage.

    The tests run in the order count-too-low, count-too-high, coverage; the first that fails
    decides, and `value` is that test's worst frame (fewest people, most people, least
    coverage). `detail` keeps the per-frame counts and coverages for every frame either way.
    """
    if len(boxes_per_frame) != len(scores_per_frame):
        raise ValueError("boxes_per_frame and scores_per_frame differ in length")
    if not boxes_per_frame:
        raise ValueError("presence needs at least one sampled frame")
    counts, coverages = [], []
    for boxes, scores in zip(boxes_per_frame, scores_per_frame):
        n, cov = frame_presence(boxes, scores, width, height, min_person_score, coverage_mode)
        counts.append(n)
        coverages.append(cov)
    detail = {
        "people_per_frame": counts,
        "coverage_per_frame": [round(c, 6) for c in coverages],
        "min_people": min_people,
        "max_people": max_people,
        "min_coverage": min_coverage,
        "min_person_score": min_person_score,
        "coverage_mode": coverage_mode,
    }
    if timestamps is not None:
        detail["timestamps_s"] = [round(float(t), 4) for t in timestamps]
    common = dict(item_kind="clip", parent_id=parent_id, detail=detail)

    fewest, most, least = min(counts), max(counts), min(coverages)
    if fewest < min_people:
        frames = [i for i, n in enumerate(counts) if n < min_people]
        detail["failing_frames"] = frames
        reason = f"people_count={fewest} < {min_people} in {len(frames)}/{len(counts)} sampled frames"
        return dropped(clip_id, reason, metric="people_count", value=float(fewest), threshold=float(min_people), **common)
    if most > max_people:
        frames = [i for i, n in enumerate(counts) if n > max_people]
        detail["failing_frames"] = frames
        reason = f"people_count={most} > {max_people} in {len(frames)}/{len(counts)} sampled frames"
        return dropped(clip_id, reason, metric="people_count", value=float(most), threshold=float(max_people), **common)
    if least < min_coverage:
        frames = [i for i, c in enumerate(coverages) if c < min_coverage]
        detail["failing_frames"] = frames
        reason = f"box_coverage={least:.4f} < {min_coverage} in {len(frames)}/{len(counts)} sampled frames"
        return dropped(clip_id, reason, metric="box_coverage", value=least, threshold=min_coverage, **common)
    reason = f"{fewest}..{most} people and box_coverage>={least:.4f} in all {len(counts)} sampled frames"
    return kept(clip_id, reason, metric="box_coverage", value=least, threshold=min_coverage, **common)
