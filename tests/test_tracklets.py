"""Linking people across adjacent 1 fps samples by maximal (total) IoU."""

import numpy as np
import pytest

from haic_core.accumulation.tracklets import (assignment_matches, build_tracks, greedy_iou_matches, iou_matrix,
                                              keypoint_similarity_matrix, link_people, link_tracklets)


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


# Two pedestrians walking side by side, a man then a woman, at 8.05 s and 9.05 s of
# opencv_vtest_pedestrians_first20s.mp4 (YOLOX-nano boxes, 640 px frames; tests/test_people_real.py
# measures them): with three others around them.
WALKERS_AT_8 = np.array([[470, 156, 500, 236], [395, 143, 418, 207], [214, 145, 240, 205], [371, 143, 396, 208],
                         [310, 148, 332, 218]], dtype=float)  # 1: the woman, 3: the man
WALKERS_AT_9 = np.array([[409, 135, 433, 194], [475, 143, 499, 215], [312, 148, 337, 215], [245, 156, 268, 217],
                         [384, 133, 410, 194]], dtype=float)  # 0: the woman, 4: the man


def test_greedy_gives_the_woman_the_mans_identity_and_the_assignment_keeps_both():
    ious = iou_matrix(WALKERS_AT_8, WALKERS_AT_9)
    # The woman's box overlaps the man's next box most (0.335): greedy takes it first and the man is lost.
    assert greedy_iou_matches(WALKERS_AT_8, WALKERS_AT_9) == [(4, 2), (0, 1), (1, 4)]
    assert assignment_matches(ious) == [(0, 1), (1, 0), (3, 4), (4, 2)]
    assert ious[1, 4] + 0 < ious[1, 0] + ious[3, 4]  # 0.335 < 0.196 + 0.230: the larger total
    linked = link_people([WALKERS_AT_8, WALKERS_AT_9])
    assert [i.tolist() for i in linked.ids_per_frame] == [[0, 1, 2, 3, 4], [1, 0, 4, 5, 3]]
    assert linked.switches_avoided == [(1, 1)]
    assert linked.as_detail() == {"linking": "assignment", "switches_avoided": 1, "switches_avoided_at": [1],
                                  "keypoint_tiebreaks": 0}
    greedy = link_people([WALKERS_AT_8, WALKERS_AT_9], method="greedy")
    assert [i.tolist() for i in greedy.ids_per_frame] == [[0, 1, 2, 3, 4], [5, 0, 4, 6, 1]]
    assert greedy.switches_avoided == [] and greedy.as_detail()["linking"] == "greedy"


def test_the_assignment_never_links_under_min_iou():
    ious = np.array([[0.9, 0.8], [0.85, 0.05]])
    assert greedy_iou_matches(np.array([[0, 0, 1, 1.0]]), np.array([[0, 0, 1, 1.0]])) == [(0, 0)]
    assert assignment_matches(ious, min_iou=0.1) == [(0, 1), (1, 0)]  # 1.65 > 0.9 + 0.05
    assert assignment_matches(ious, min_iou=0.82) == [(0, 0)]  # only 0.9 and 0.85 may link, and not both
    assert assignment_matches(np.zeros((2, 3))) == [] and assignment_matches(np.zeros((0, 2))) == []


def pose(offset):
    """17 keypoints on a vertical line, shifted sideways by `offset` (normalized units)."""
    return np.column_stack([np.full(17, 0.5 + offset), np.linspace(0.2, 0.8, 17)])


def test_keypoint_similarity_breaks_a_tie_of_identical_boxes():
    # Two people one in front of the other: the same box at both samples, every IoU 1. Their keypoints differ.
    box = np.array([[0.3, 0.1, 0.7, 0.9]] * 2)
    before, after = np.array([pose(-0.1), pose(0.1)]), np.array([pose(0.1), pose(-0.1)])
    scores = np.ones((2, 17))
    similarity = keypoint_similarity_matrix(box, before, scores, box, after, scores)
    assert similarity[0, 1] == similarity[1, 0] == 1.0 and similarity[0, 0] == similarity[1, 1] < 0.1
    linked = link_people([box, box], keypoints_per_frame=[before, after], keypoint_scores_per_frame=[scores, scores])
    assert [i.tolist() for i in linked.ids_per_frame] == [[0, 1], [1, 0]]
    assert linked.tiebreaks == [(1, 2)]
    # Without keypoints (or with the tie-break off) IoU alone decides, lowest indices first.
    assert [i.tolist() for i in link_tracklets([box, box])] == [[0, 1], [0, 1]]
    assert [i.tolist() for i in link_tracklets([box, box], keypoints_per_frame=[before, after],
                                               keypoint_scores_per_frame=[scores, scores],
                                               keypoint_tiebreak=0.0)] == [[0, 1], [0, 1]]


def test_keypoints_under_the_score_cut_are_not_compared():
    box = np.array([[0.3, 0.1, 0.7, 0.9]])
    sure, unsure = np.ones((1, 17)), np.full((1, 17), 0.2)
    assert keypoint_similarity_matrix(box, pose(0)[None], unsure, box, pose(0)[None], sure).tolist() == [[0.0]]
    assert keypoint_similarity_matrix(box, pose(0)[None], sure, box, pose(0)[None], sure).tolist() == [[1.0]]


def test_a_linking_method_that_does_not_exist_is_refused():
    with pytest.raises(ValueError, match="linking must be 'assignment' or 'greedy'"):
        link_people([np.zeros((0, 4))], method="hungarian")
