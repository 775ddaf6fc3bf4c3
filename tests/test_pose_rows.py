"""People -> detection rows -> track rows -> Tracks, with exact values at every step."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from haic_core.accumulation.pose_rows import (
    DETECTION_COLUMNS,
    TRACK_COLUMNS,
    clip_track_rows,
    detection_rows,
    tracks_from_rows,
)

WIDTH, HEIGHT = 200, 100


@dataclass(frozen=True)
class Person:
    """Duck-typed like the pose estimator's Person: pixels of a 200 x 100 frame."""

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    keypoint_scores: np.ndarray


def person(dx: float, score: float = 0.9) -> Person:
    # Keypoint j at (20 + 4j + dx, 10 + 4j) px; every score 0.91234 (stored as 0.9123).
    j = np.arange(17, dtype=np.float64)
    return Person(box=np.array([20.0 + dx, 10.0, 100.0 + dx, 90.0]), score=score,
                  keypoints=np.column_stack([20.0 + 4 * j + dx, 10.0 + 4 * j]),
                  keypoint_scores=np.full(17, 0.91234))


# Four instants; the presence test uses 0, 1, 3 and the 1 fps tracking 0, 2, 3 (0 and 3 serve
# both). One person walks right 20 px per tracked second; a second one appears at 2.0 s far
# to the right, and an unconfident detection at 1.0 s is left out of tracking by the caller.
TIMES = [0.0, 0.5, 1.0, 2.0]
PEOPLE = [[person(0.0)], [person(10.0)], [person(20.0), person(-20.0, score=0.1)],
          [person(40.0), Person(np.array([160.0, 0.0, 200.0, 100.0]), 0.8, np.full((17, 2), 180.0), np.ones(17))]]


def test_detection_rows_are_normalized_and_rounded():
    rows = detection_rows("c", TIMES, PEOPLE, [0, 1, 3], [0, 2, 3], WIDTH, HEIGHT)
    assert [(r["t"], r["person"], r["presence_sample"], r["pose_sample"]) for r in rows] == [
        (0.0, 0, True, True), (0.5, 0, True, False), (1.0, 0, False, True), (1.0, 1, False, True),
        (2.0, 0, True, True), (2.0, 1, True, True)]
    first = rows[0]
    assert set(first) == set(DETECTION_COLUMNS)
    assert first["box"] == [0.1, 0.1, 0.5, 0.9]
    assert first["keypoints"][:4] == [0.1, 0.1, 0.12, 0.14]  # (20/200, 10/100), (24/200, 14/100)
    assert first["keypoints"][-2:] == [0.42, 0.74]  # keypoint 16: (84/200, 74/100)
    assert first["keypoint_scores"] == [0.9123] * 17
    assert (first["score"], first["frame_width"], first["frame_height"]) == (0.9, 200, 100)
    assert rows[4]["box"] == [0.3, 0.1, 0.7, 0.9]


def test_round_trip_from_people_to_tracks():
    detections = pd.DataFrame(detection_rows("c", TIMES, PEOPLE, [0, 1, 3], [0, 2, 3], WIDTH, HEIGHT),
                              columns=DETECTION_COLUMNS)
    tracked = detections[detections["pose_sample"] & (detections["score"] >= 0.2)]
    rows, lengths, _ = clip_track_rows("c", [0.0, 1.0, 2.0], tracked, min_iou=0.1)
    assert [(r["track_id"], r["sample"], r["t"]) for r in rows] == [(0, 0, 0.0), (0, 1, 1.0), (0, 2, 2.0), (1, 2, 2.0)]
    assert lengths == {0: 3, 1: 1}
    assert set(rows[0]) == set(TRACK_COLUMNS)
    assert rows[0]["keypoints"][0] == [0.1, 0.1, 0.9123]

    tracks = tracks_from_rows(pd.DataFrame(rows, columns=TRACK_COLUMNS))
    assert [t.track_id for t in tracks] == [0, 1]
    walker, newcomer = tracks
    assert walker.frame_indices.tolist() == [0, 1, 2]
    assert walker.boxes.tolist() == [[0.1, 0.1, 0.5, 0.9], [0.2, 0.1, 0.6, 0.9], [0.3, 0.1, 0.7, 0.9]]
    assert walker.keypoints[:, 0].tolist() == [[0.1, 0.1], [0.2, 0.1], [0.3, 0.1]]
    assert walker.keypoints.shape == (3, 17, 2) and walker.keypoint_scores.tolist() == [[0.9123] * 17] * 3
    assert newcomer.frame_indices.tolist() == [2]
    assert newcomer.boxes.tolist() == [[0.8, 0.0, 1.0, 1.0]]
    assert newcomer.keypoints[0, 0].tolist() == [0.9, 1.8]


def test_no_rows_no_tracks():
    assert tracks_from_rows(None) == []
    assert tracks_from_rows(pd.DataFrame(columns=TRACK_COLUMNS)) == []


def test_track_rows_record_the_identity_switches_the_assignment_avoided():
    from tests.test_tracklets import WALKERS_AT_8, WALKERS_AT_9

    def rows_at(t, boxes):
        return [{"clip_id": "c", "t": t, "pose_sample": True, "person": k, "score": 0.9,
                 "box": (np.asarray(b) / [640, 480, 640, 480]).round(6).tolist(),
                 "keypoints": [0.5] * 34, "keypoint_scores": [0.9] * 17} for k, b in enumerate(boxes)]

    detections = pd.DataFrame(rows_at(8.05, WALKERS_AT_8) + rows_at(9.05, WALKERS_AT_9))
    rows, lengths, linked = clip_track_rows("c", [8.05, 9.05], detections, min_iou=0.1)
    assert linked.as_detail() == {"linking": "assignment", "switches_avoided": 1, "switches_avoided_at": [1],
                                  "keypoint_tiebreaks": 0}
    assert lengths == {0: 2, 1: 2, 2: 1, 3: 2, 4: 2, 5: 1}
    _, greedy_lengths, greedy = clip_track_rows("c", [8.05, 9.05], detections, min_iou=0.1, linking="greedy")
    assert greedy.as_detail()["switches_avoided"] == 0 and len(greedy_lengths) == 7
