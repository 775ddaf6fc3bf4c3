"""A 1 fps sample where nobody was detected ends the tracklets: the samples around it are two
seconds apart and must not be measured as one adjacent pair."""

from __future__ import annotations

import numpy as np
import pandas as pd

from haic_core.accumulation.motion import measure_clip
from haic_core.accumulation.pose_rows import TRACK_COLUMNS, clip_track_rows, tracks_from_rows


def detection(t, dx):
    keypoints = (np.linspace(0.3, 0.6, 34) + dx).round(6).tolist()
    return {"clip_id": "c", "t": t, "pose_sample": True, "person": 0, "score": 0.9,
            "box": [0.2 + dx, 0.2, 0.6 + dx, 0.9], "keypoints": keypoints, "keypoint_scores": [0.9] * 17}


def test_an_empty_sample_splits_the_track_and_no_pair_spans_it():
    # The same person at 0.5 s and 2.5 s, nobody at 1.5 s: in the detections only as a gap.
    detections = pd.DataFrame([detection(0.5, 0.0), detection(2.5, 0.01)])
    rows, lengths, _ = clip_track_rows("c", [0.5, 1.5, 2.5], detections, min_iou=0.1)
    assert [(r["sample"], r["track_id"]) for r in rows] == [(0, 0), (2, 1)]
    assert lengths == {0: 1, 1: 1}
    motion = measure_clip(tracks_from_rows(pd.DataFrame(rows, columns=TRACK_COLUMNS)))
    assert all(m.measured_pairs == 0 for m in motion.tracks) and not np.isfinite(motion.l1)


def test_adjacent_samples_of_one_person_make_one_measured_pair():
    detections = pd.DataFrame([detection(0.5, 0.0), detection(1.5, 0.01)])
    rows, lengths, _ = clip_track_rows("c", [0.5, 1.5], detections, min_iou=0.1)
    assert lengths == {0: 2}
    motion = measure_clip(tracks_from_rows(pd.DataFrame(rows, columns=TRACK_COLUMNS)))
    # Every one of the 34 coordinates (17 keypoints, x and y) moved by 0.01: L1 = 34 * 0.01.
    assert abs(motion.l1 - 0.34) < 1e-9
