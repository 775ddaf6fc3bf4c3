"""People as table rows, and back: detections -> tracklet rows -> `Track`s for the motion filters.

Three shapes of the same people travel between the human-filter stages:

- detection rows (`DETECTION_COLUMNS`): every person at every sampled instant of a clip, box
  and keypoints normalized by the frame's width and height, so later stages never need the
  frame size or the video again;
- track rows (`TRACK_COLUMNS`): the 1 fps detections linked into tracklets by maximal total IoU
  (keypoint similarity breaking ties), with keypoints as 17 x (x, y, score);
- `Track`s: one tracklet's arrays, what `haic_core.accumulation.motion` measures.

Pure functions over plain data (lists of dicts, DataFrames); no I/O.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np
import pandas as pd

from haic_core.accumulation.tracklets import (KEYPOINT_TIEBREAK, Linking, LinkingMethod, Track, build_tracks,
                                              link_people)

NUM_KEYPOINTS = 17

DETECTION_COLUMNS = ["clip_id", "t", "presence_sample", "pose_sample", "person", "score", "box",
                     "keypoints", "keypoint_scores", "frame_width", "frame_height"]
TRACK_COLUMNS = ["clip_id", "track_id", "sample", "t", "box", "keypoints", "score"]


class DetectedPerson(Protocol):
    """What a pose estimator reports of one person, in pixels (the estimator's `Person`)."""

    box: np.ndarray  # (4,) x1, y1, x2, y2
    score: float
    keypoints: np.ndarray  # (17, 2) x, y
    keypoint_scores: np.ndarray  # (17,)


def detection_rows(clip_id: str, times: Sequence[float], people: Sequence[Sequence[DetectedPerson]],
                   presence_index: Sequence[int], pose_index: Sequence[int], width: int,
                   height: int) -> list[dict]:
    """One row per person per sampled instant of a clip (`DETECTION_COLUMNS`).

    `people[i]` are the people found at `times[i]`; `presence_index` / `pose_index` are the
    positions in `times` that the presence test and the 1 fps pose tracking use (one instant
    may serve both). Box and keypoints are divided by (width, height) and rounded to 6
    decimals, keypoint scores to 4: enough for the thresholds, and stable bytes across runs.
    """
    presence, pose_at = set(presence_index), set(pose_index)
    scale = np.array([width, height], dtype=np.float64)
    rows = []
    for i, (t, instant_people) in enumerate(zip(times, people)):
        for k, person in enumerate(instant_people):
            rows.append({
                "clip_id": clip_id, "t": float(t), "presence_sample": i in presence, "pose_sample": i in pose_at,
                "person": k, "score": float(person.score),
                "box": (np.asarray(person.box, dtype=np.float64).reshape(2, 2) / scale).reshape(-1).round(6).tolist(),
                "keypoints": (np.asarray(person.keypoints, dtype=np.float64) / scale).reshape(-1).round(6).tolist(),
                "keypoint_scores": np.asarray(person.keypoint_scores, dtype=np.float64).round(4).tolist(),
                "frame_width": width, "frame_height": height,
            })
    return rows


def clip_track_rows(clip_id: str, pose_times: list[float], detections: pd.DataFrame, min_iou: float, *,
                    linking: LinkingMethod = "assignment",
                    keypoint_tiebreak: float = KEYPOINT_TIEBREAK) -> tuple[list[dict], dict[int, int], Linking]:
    """Tracklet rows of one clip (`TRACK_COLUMNS`), each tracklet's length in samples, and the linking
    (where it avoided the greedy reading's identity switches).

    `detections` are the clip's detection rows to track (1 fps samples, people only).
    Every 1 fps sample takes part, an empty one included: a sample where nobody was detected
    ends the tracklets, so two samples two seconds apart are never taken for adjacent ones.
    `sample` is the position in `pose_times`, which the motion tests use for adjacency.
    """
    at_time = dict(tuple(detections.groupby("t", sort=False)))
    frames = [at_time.get(t, detections.iloc[0:0]) for t in pose_times]
    linked = link_people([_column(f, "box", 4) for f in frames], min_iou,
                         keypoints_per_frame=[_column(f, "keypoints", 34).reshape(-1, NUM_KEYPOINTS, 2) for f in frames],
                         keypoint_scores_per_frame=[_column(f, "keypoint_scores", NUM_KEYPOINTS) for f in frames],
                         method=linking, keypoint_tiebreak=keypoint_tiebreak)
    rows, lengths = [], {}
    for sample, (t, frame, frame_ids) in enumerate(zip(pose_times, frames, linked.ids_per_frame)):
        for det, track_id in zip(frame.itertuples(index=False), frame_ids):
            xy = np.asarray(det.keypoints, dtype=np.float64).reshape(NUM_KEYPOINTS, 2)
            keypoints = np.column_stack([xy, np.asarray(det.keypoint_scores, dtype=np.float64)])
            rows.append({"clip_id": clip_id, "track_id": int(track_id), "sample": sample, "t": float(t),
                         "box": list(det.box), "keypoints": keypoints.round(6).tolist(), "score": det.score})
            lengths[int(track_id)] = lengths.get(int(track_id), 0) + 1
    return rows, lengths, linked


def _column(frame: pd.DataFrame, name: str, width: int) -> np.ndarray:
    """A list column of one sample's detection rows as an (N, width) array (a Parquet round trip gives
    arrays of arrays: list() first)."""
    return np.array([np.asarray(list(v), dtype=np.float64) for v in frame[name]], dtype=np.float64).reshape(-1, width)


def tracks_from_rows(rows: pd.DataFrame | None) -> list[Track]:
    """The `Track`s of one clip's track rows (none for no rows), ordered by track id.

    The rows are regrouped per 1 fps sample (an empty list where nobody was tracked), so that
    `build_tracks` — the one place people become `Track`s — sees the sample positions as its
    frame indices. Rows come from `clip_track_rows`, in sample order within every tracklet.
    """
    if rows is None or rows.empty:
        return []
    samples = rows["sample"].to_numpy(dtype=np.int64)
    track_ids = rows["track_id"].to_numpy(dtype=np.int64)
    boxes = np.array(rows["box"].tolist(), dtype=np.float64).reshape(-1, 4)
    # A Parquet round trip turns each row's 17 x 3 list into an array of arrays: list() first.
    keypoints = np.array([np.asarray(list(k), dtype=np.float64) for k in rows["keypoints"]]).reshape(
        -1, NUM_KEYPOINTS, 3)
    at_sample = [np.flatnonzero(samples == sample) for sample in range(int(samples.max()) + 1)]
    return build_tracks([track_ids[at] for at in at_sample], [boxes[at] for at in at_sample],
                        [keypoints[at, :, :2] for at in at_sample], [keypoints[at, :, 2] for at in at_sample])
