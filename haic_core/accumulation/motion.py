"""Motion filter (keypoint L1) and camera-motion filter (affine residual) on 1 fps tracklets.

Paper: keep a clip only if the L1 distance between keypoints of adjacent sampled frames
exceeds 0.085 (keypoints normalized by video width and height), and only if keypoints do not
move as a whole: fit P(t+1) ≈ T·P(t), T affine 2×3, by least squares on homogeneous keypoints
(3×17); keep only if the residual r > 0.0016.

Our readings of the paper:
- L1 of one person between adjacent samples = Σ over the 17 keypoints of |Δx| + |Δy|, in
  normalized coordinates (the L1 norm of the 34-vector difference).
- Affine residual of one pair = the sum of squared residuals of that least-squares fit (what
  ``np.linalg.lstsq`` reports, summed over the x and y columns); a clip's residual is the mean
  over its tracklets of each tracklet's mean over pairs.
- Low-confidence keypoints: a keypoint whose score is below `min_keypoint_score` in *either*
  frame of a pair is left out of that pair, for both the L1 and the fit, so an undetected
  joint jumping around is never counted as motion. Both sums are then rescaled by 17 / n_valid,
  so values stay on the paper's 17-keypoint scale and are comparable between pairs. A pair
  with fewer than `min_valid_keypoints` valid keypoints is skipped (no value).
- Hidden joints (`joints_in_box`, default on): a keypoint must also lie inside the person's box in
  both frames. A pose model draws joints it cannot see: hips hidden behind a table were scored above
  the keypoint cut and drawn at the table's edge, just outside the box of the visible person, moving
  with the table's edge rather than the person (measured in tests/test_hidden_joints.py and README
  "Hidden joints"); real people's confident joints lie inside their boxes (98–100 % on the shared clips).

Aggregation defaults, chosen from measurements on real clips (tests/test_human_filters_real.py):
over pairs ``min`` — the paper's literal "all adjacent pairs" (moving people measured min
0.31–1.44, far above 0.085); over tracklets ``any`` — a clip with one clearly moving person
and a static bystander (arm wrestling with onlookers) is an action clip; ``all`` would drop it.
Tracklets with fewer than `min_track_pairs` measured pairs are left out of the aggregation
(default 1: any measured pair counts). Raising it guards against a detector flicker seen in
two samples, but at 1 fps fast movers fragment (basketball players move more than a box width
per second: IoU 0 between samples), and a 2-pair minimum left no measurable track there.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from haic_core.decisions import Decision, dropped, kept
from haic_core.accumulation.tracklets import Track

PairAggregate = Literal["min", "mean"]
TrackAggregate = Literal["any", "all"]
ResidualTrackAggregate = Literal["mean", "max"]

MIN_L1 = 0.085  # paper
MIN_RESIDUAL = 0.0016  # paper
NUM_KEYPOINTS = 17
# Not from the paper: 0.3 is the usual keypoint confidence cut for RTMPose/MoveNet demos.
MIN_KEYPOINT_SCORE = 0.3
# Not from the paper: an affine fit of ≤ 3 points is exact (residual 0), so a pair needs more;
# 6 (a third of the body) keeps truncated people (torso + arms) measurable.
MIN_VALID_KEYPOINTS = 6
MIN_TRACK_PAIRS = 1
# Not from the paper: a joint outside the person's box in either frame is a joint the model could not see.
JOINTS_IN_BOX = True


def normalize_keypoints(keypoints: np.ndarray, width: float, height: float) -> np.ndarray:
    """Pixel keypoints (..., 17, 2) → (x / W, y / H)."""
    return np.asarray(keypoints, dtype=np.float64) / np.array([float(width), float(height)])


def valid_keypoints(
    scores_a: np.ndarray | None, scores_b: np.ndarray | None, min_keypoint_score: float = MIN_KEYPOINT_SCORE
) -> np.ndarray:
    """(17,) mask of keypoints confident in both frames (all True when scores are None)."""
    mask = np.ones(NUM_KEYPOINTS, dtype=bool)
    for scores in (scores_a, scores_b):
        if scores is not None:
            mask &= np.asarray(scores, dtype=np.float64).reshape(NUM_KEYPOINTS) >= min_keypoint_score
    return mask


def inside_box(keypoints: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(17,) whether each (x, y) keypoint lies inside the xyxy box (edges included)."""
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(NUM_KEYPOINTS, 2)
    x0, y0, x1, y1 = np.asarray(box, dtype=np.float64).reshape(4)
    return (keypoints[:, 0] >= x0) & (keypoints[:, 0] <= x1) & (keypoints[:, 1] >= y0) & (keypoints[:, 1] <= y1)


def pair_l1(kp_a: np.ndarray, kp_b: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Σ |Δx| + |Δy| over valid keypoints, rescaled to 17 keypoints (NaN when none valid)."""
    kp_a, kp_b = np.asarray(kp_a, dtype=np.float64), np.asarray(kp_b, dtype=np.float64)
    valid = np.ones(NUM_KEYPOINTS, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    n = int(valid.sum())
    if n == 0:
        return float("nan")
    return float(np.abs(kp_b[valid] - kp_a[valid]).sum() * NUM_KEYPOINTS / n)


def affine_fit(kp_a: np.ndarray, kp_b: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Least-squares T (2×3) with kp_b ≈ T · [kp_a; 1], and the sum of squared residuals.

    The residual is computed from the fit (equal to what ``np.linalg.lstsq`` reports when the
    system has full rank; lstsq reports nothing for rank-deficient systems, e.g. collinear
    keypoints) and rescaled by 17 / n_valid like the L1.
    """
    kp_a, kp_b = np.asarray(kp_a, dtype=np.float64), np.asarray(kp_b, dtype=np.float64)
    valid = np.ones(NUM_KEYPOINTS, dtype=bool) if valid is None else np.asarray(valid, dtype=bool)
    n = int(valid.sum())
    if n == 0:
        return np.full((2, 3), np.nan), float("nan")
    src = np.hstack([kp_a[valid], np.ones((n, 1))])  # (n, 3): homogeneous P(t) transposed
    dst = kp_b[valid]  # (n, 2)
    solution, *_ = np.linalg.lstsq(src, dst, rcond=None)  # (3, 2) = T transposed
    residual = float(((src @ solution - dst) ** 2).sum())
    return solution.T, residual * NUM_KEYPOINTS / n


@dataclass(frozen=True)
class TrackMotion:
    """Per-pair measurements of one tracklet (NaN marks a skipped pair)."""

    track_id: int
    pair_l1: list[float]
    pair_residual: list[float]
    valid_keypoints: list[int]

    @property
    def measured_pairs(self) -> int:
        return int(np.isfinite(self.pair_l1).sum())

    def l1(self, how: PairAggregate) -> float:
        values = [v for v in self.pair_l1 if np.isfinite(v)]
        if not values:
            return float("nan")
        return float(min(values) if how == "min" else np.mean(values))

    @property
    def residual(self) -> float:
        values = [v for v in self.pair_residual if np.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")


def measure_track(
    track: Track,
    min_keypoint_score: float = MIN_KEYPOINT_SCORE,
    min_valid_keypoints: int = MIN_VALID_KEYPOINTS,
    joints_in_box: bool = JOINTS_IN_BOX,
) -> TrackMotion:
    """L1 and affine residual of every adjacent pair of samples of one tracklet.

    The track's keypoints and boxes must already be normalized (x / W, y / H).
    """
    l1s, residuals, valids = [], [], []
    for t in range(len(track) - 1):
        if track.frame_indices[t + 1] != track.frame_indices[t] + 1:
            continue  # not adjacent samples (a caller-built track with a gap)
        valid = valid_keypoints(track.keypoint_scores[t], track.keypoint_scores[t + 1], min_keypoint_score)
        if joints_in_box:
            valid &= inside_box(track.keypoints[t], track.boxes[t]) & inside_box(track.keypoints[t + 1], track.boxes[t + 1])
        n = int(valid.sum())
        valids.append(n)
        if n < min_valid_keypoints:
            l1s.append(float("nan"))
            residuals.append(float("nan"))
            continue
        l1s.append(pair_l1(track.keypoints[t], track.keypoints[t + 1], valid))
        residuals.append(affine_fit(track.keypoints[t], track.keypoints[t + 1], valid)[1])
    return TrackMotion(track.track_id, l1s, residuals, valids)


@dataclass(frozen=True)
class ClipMotion:
    """A clip's motion measurements: the aggregated L1 and residual, and every track's values.

    `l1` / `residual` are NaN when no tracklet had enough measured pairs.
    """

    l1: float
    residual: float
    tracks: list[TrackMotion]
    settings: dict = field(default_factory=dict)

    def as_detail(self) -> dict:
        def r(x: float) -> float | None:
            return None if not np.isfinite(x) else round(float(x), 6)

        return {
            "keypoint_l1": r(self.l1),
            "affine_residual": r(self.residual),
            "tracks": [
                {
                    "track_id": t.track_id,
                    "pair_l1": [r(v) for v in t.pair_l1],
                    "pair_residual": [r(v) for v in t.pair_residual],
                    "valid_keypoints": t.valid_keypoints,
                }
                for t in self.tracks
            ],
            **self.settings,
        }


def measure_clip(
    tracks: list[Track],
    pair_aggregate: PairAggregate = "min",
    track_aggregate: TrackAggregate = "any",
    residual_track_aggregate: ResidualTrackAggregate = "mean",
    min_keypoint_score: float = MIN_KEYPOINT_SCORE,
    min_valid_keypoints: int = MIN_VALID_KEYPOINTS,
    min_track_pairs: int = MIN_TRACK_PAIRS,
    joints_in_box: bool = JOINTS_IN_BOX,
) -> ClipMotion:
    """Aggregate per-pair values: over pairs by `pair_aggregate`, over tracklets by
    `track_aggregate` (``any`` → the largest track value decides, ``all`` → the smallest), and
    the residual as the mean (or max) over tracklets of each tracklet's mean over pairs.
    Tracklets with fewer than `min_track_pairs` measured pairs are measured but not aggregated.
    """
    if pair_aggregate not in ("min", "mean"):
        raise ValueError(f"pair_aggregate must be 'min' or 'mean', got {pair_aggregate!r}")
    if track_aggregate not in ("any", "all"):
        raise ValueError(f"track_aggregate must be 'any' or 'all', got {track_aggregate!r}")
    if residual_track_aggregate not in ("mean", "max"):
        raise ValueError(f"residual_track_aggregate must be 'mean' or 'max', got {residual_track_aggregate!r}")
    measured = [measure_track(t, min_keypoint_score, min_valid_keypoints, joints_in_box) for t in tracks]
    counted = [m for m in measured if m.measured_pairs >= max(1, min_track_pairs)]
    if counted:
        l1s = [m.l1(pair_aggregate) for m in counted]
        residuals = [m.residual for m in counted]
        l1 = max(l1s) if track_aggregate == "any" else min(l1s)
        residual = float(np.mean(residuals) if residual_track_aggregate == "mean" else max(residuals))
    else:
        l1 = residual = float("nan")
    settings = {
        "pair_aggregate": pair_aggregate,
        "track_aggregate": track_aggregate,
        "residual_track_aggregate": residual_track_aggregate,
        "min_keypoint_score": min_keypoint_score,
        "min_valid_keypoints": min_valid_keypoints,
        "min_track_pairs": min_track_pairs,
        "joints_in_box": joints_in_box,
        "tracks_counted": [m.track_id for m in counted],
    }
    return ClipMotion(float(l1), residual, measured, settings)


def _above_threshold_decision(clip_id: str, motion: ClipMotion, metric: str, value: float, threshold: float,
                              decimals: int, failure: str, parent_id: str | None) -> Decision:
    """Kept when `value` > `threshold`; dropped with `failure` as the cause otherwise, or when
    nothing could be measured (NaN). Both filters decide this way."""
    detail = {**motion.as_detail(), f"min_{metric.split('_')[-1]}": threshold}
    common = dict(item_kind="clip", parent_id=parent_id, metric=metric, threshold=threshold, detail=detail)
    if not np.isfinite(value):
        return dropped(clip_id, "no tracklet with enough adjacent 1 fps samples of confident keypoints",
                       value=None, code="no_tracklet", **common)
    measured = f"{metric}={value:.{decimals}f}"
    if value > threshold:
        return kept(clip_id, f"{measured} > {threshold}", value=value, **common)
    return dropped(clip_id, f"{failure}: {measured} <= {threshold}", value=value, **common)


def keypoint_motion_decision(
    clip_id: str, motion: ClipMotion, min_l1: float = MIN_L1, parent_id: str | None = None
) -> Decision:
    """Motion filter: keep when the clip's keypoint L1 > min_l1 (people are not static)."""
    return _above_threshold_decision(clip_id, motion, "keypoint_l1", motion.l1, min_l1, 4, "static people",
                                     parent_id)


def camera_motion_decision(
    clip_id: str, motion: ClipMotion, min_residual: float = MIN_RESIDUAL, parent_id: str | None = None
) -> Decision:
    """Camera-motion filter: keep when keypoints do not move as one rigid (affine) whole."""
    return _above_threshold_decision(clip_id, motion, "affine_residual", motion.residual, min_residual, 5,
                                     "rigid/camera motion only", parent_id)


def motion_decision(
    clip_id: str,
    motion: ClipMotion,
    min_l1: float = MIN_L1,
    min_residual: float = MIN_RESIDUAL,
    parent_id: str | None = None,
) -> Decision:
    """Both filters in the paper's order: the motion test decides first, then the camera test.

    The returned Decision carries the deciding test's metric/value/threshold; `detail` has
    both values and both thresholds whatever the verdict.
    """
    first = keypoint_motion_decision(clip_id, motion, min_l1, parent_id)
    decision = first if first.verdict != "kept" else camera_motion_decision(clip_id, motion, min_residual, parent_id)
    detail = {**decision.detail, "min_l1": min_l1, "min_residual": min_residual}
    reason = f"{first.reason}; {decision.reason}" if decision.verdict == "kept" else decision.reason
    return replace(decision, reason=reason, detail=detail)
