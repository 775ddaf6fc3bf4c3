"""Linking people across adjacent 1 fps samples by maximal IoU."""

import numpy as np
import pytest

from haic_core.accumulation.tracklets import build_tracks, greedy_iou_matches, iou_matrix, link_tracklets


def crossing_people():
    """A (40x100, tall) walks right 15 px a sample; B (40x60, short) walks left; they cross at t=2."""
    a = [[15.0 * t, 0.0, 15.0 * t + 40, 100.0] for t in range(5)]
    b = [[60.0 - 15.0 * t, 40.0, 100.0 - 15.0 * t, 100.0] for t in range(5)]
    return [np.array([a[t], b[t]]) for t in range(5)]


def test_iou_of_crossing_boxes_by_hand():
    f = crossing_people()
    ious = iou_matrix(f[1], f[2])
    # A1-A2: overlap 25x100 = 2500 / (4000 + 4000 - 2500) = 5/11; B1-B2: 25x60 = 1500 / 3300 = 5/11
    # A1-B2 and B1-A2: 25x60 = 1500 / (4000 + 2400 - 1500) = 15/49
    assert ious == pytest.approx(np.array([[5 / 11, 15 / 49], [15 / 49, 5 / 11]]))


def test_two_people_crossing_keep_their_ids():
    ids = link_tracklets(crossing_people())
    assert [i.tolist() for i in ids] == [[0, 1]] * 5


def test_detection_order_does_not_matter():
    frames = crossing_people()
    frames[2] = frames[2][::-1].copy()  # the detector lists them the other way round at t=2
    ids = link_tracklets(frames)
    assert [i.tolist() for i in ids] == [[0, 1], [0, 1], [1, 0], [0, 1], [0, 1]]


def test_greedy_takes_the_largest_iou_first():
    prev = np.array([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 20.0, 10.0]])
    curr = np.array([[0.0, 0.0, 10.0, 10.0]])  # IoU 1.0 with prev[0], 0.5 with prev[1]
    assert greedy_iou_matches(prev, curr) == [(0, 0)]


def test_below_min_iou_a_new_tracklet_starts_and_the_old_one_ends():
    frames = [np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([[9.0, 0.0, 19.0, 10.0]]), np.array([[9.0, 0.0, 19.0, 10.0]])]
    # IoU(0->1) = 10 / 190 = 0.0526
    assert [i.tolist() for i in link_tracklets(frames, min_iou=0.1)] == [[0], [1], [1]]
    assert [i.tolist() for i in link_tracklets(frames, min_iou=0.05)] == [[0], [0], [0]]


def test_empty_frames_end_tracklets():
    frames = [np.array([[0.0, 0.0, 10.0, 10.0]]), np.zeros((0, 4)), np.array([[0.0, 0.0, 10.0, 10.0]])]
    assert [i.tolist() for i in link_tracklets(frames)] == [[0], [], [1]]


def test_build_tracks_gathers_keypoints_per_id():
    frames = crossing_people()
    ids = link_tracklets(frames)
    kps = [np.full((2, 17, 2), t, dtype=float) + np.array([0.0, 0.5])[:, None, None] for t in range(5)]
    scores = [np.ones((2, 17))] * 5
    tracks = build_tracks(ids, frames, kps, scores)
    assert [t.track_id for t in tracks] == [0, 1]
    assert tracks[1].frame_indices.tolist() == [0, 1, 2, 3, 4]
    assert tracks[1].keypoints[:, 0, 0].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
    assert tracks[0].boxes[4].tolist() == [60.0, 0.0, 100.0, 100.0]
