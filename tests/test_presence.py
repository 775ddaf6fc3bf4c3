"""Human existence filter: 1..5 people in every sampled frame, boxes covering >= 10 %."""

import numpy as np
import pytest

from haic_core.accumulation.presence import (box_coverage, frame_people, frame_presence, person_mask,
                                             presence_decision)

W, H = 100.0, 100.0  # frame area 10,000 px: a box of 1,000 px covers exactly 10 %


def people(n, w=10.0, h=100.0):
    """n side-by-side boxes of w x h pixels (score 0.9)."""
    boxes = np.array([[i * w, 0.0, (i + 1) * w, h] for i in range(n)]).reshape(-1, 4)
    return boxes, np.full(n, 0.9)


def decide(frames, **kw):
    return presence_decision("clip-1", [b for b, _ in frames], [s for _, s in frames], W, H, **kw)


@pytest.mark.parametrize(
    "n, verdict, metric, value",
    [(0, "dropped", "people_count", 0.0), (1, "kept", "box_coverage", 0.1),
     (5, "kept", "box_coverage", 0.1), (6, "dropped", "people_count", 6.0)],
)  # fmt: skip
def test_people_count_edges(n, verdict, metric, value):
    frames = [people(1)] * 15 + [people(n)]
    d = decide(frames)
    assert (d.verdict, d.metric, d.value) == (verdict, metric, value)
    assert d.item_kind == "clip"
    assert d.detail["people_per_frame"] == [1] * 15 + [n]
    if n == 6:
        assert d.threshold == 5 and d.detail["failing_frames"] == [15]
    if n == 0:
        assert d.threshold == 1


def test_one_frame_with_six_people_drops_the_clip_even_if_all_others_pass():
    d = decide([people(2)] * 15 + [people(6)])
    assert d.verdict == "dropped" and "people_count=6 > 5" in d.reason


def test_coverage_just_under_ten_percent_is_dropped():
    box = np.array([[0.0, 0.0, 10.0, 99.9]])  # 999 px = 9.99 %
    d = decide([(box, np.array([0.9]))] * 16)
    assert d.verdict == "dropped" and d.metric == "box_coverage"
    assert d.value == pytest.approx(0.0999) and d.threshold == 0.10


def test_coverage_just_over_ten_percent_is_kept():
    box = np.array([[0.0, 0.0, 10.0, 100.1]])  # clipped to the frame: 1,000 px = 10 %
    d = decide([(np.array([[0.0, 0.0, 10.01, 100.0]]), np.array([0.9]))] * 16)
    assert d.verdict == "kept" and d.value == pytest.approx(0.1001)
    assert box_coverage(box, W, H) == pytest.approx(0.10)


def test_boxes_are_clipped_to_the_frame():
    assert box_coverage(np.array([[-50.0, -50.0, 10.0, 10.0]]), W, H) == pytest.approx(0.01)
    assert box_coverage(np.array([[90.0, 90.0, 300.0, 300.0]]), W, H) == pytest.approx(0.01)
    assert box_coverage(np.array([[200.0, 0.0, 300.0, 50.0]]), W, H) == 0.0


def test_sum_counts_overlap_twice_union_once():
    boxes = np.array([[0.0, 0.0, 20.0, 50.0], [10.0, 0.0, 30.0, 50.0]])  # 1,000 + 1,000, overlap 500
    assert box_coverage(boxes, W, H, "sum") == pytest.approx(0.20)
    assert box_coverage(boxes, W, H, "union") == pytest.approx(0.15)
    d = decide([(boxes[:1] * [1, 1, 0.95, 1], np.array([0.9]))] * 16, coverage_mode="union")
    assert d.verdict == "dropped"  # 19 x 50 = 950 px < 10 %


def test_coverage_is_the_union_by_default_and_both_are_recorded():
    # Two people whose boxes overlap by half: 1,000 + 1,000 px, 500 of them shared (the sum says 20 %).
    boxes = np.array([[0.0, 0.0, 20.0, 50.0], [10.0, 0.0, 30.0, 50.0]])
    d = decide([(boxes, np.array([0.9, 0.9]))] * 16, min_coverage=0.16)
    assert (d.verdict, d.metric, d.value, d.threshold) == ("dropped", "box_coverage", pytest.approx(0.15), 0.16)
    assert d.detail["coverage_mode"] == "union"
    assert d.detail["coverage_union_per_frame"] == [0.15] * 16 and d.detail["coverage_sum_per_frame"] == [0.2] * 16
    assert decide([(boxes, np.array([0.9, 0.9]))] * 16, min_coverage=0.16, coverage_mode="sum").verdict == "kept"
    # Boxes over the whole frame: the union never passes 1, the sum does (a close-up of two hands: 0.89-1.39).
    everything = np.array([[0.0, 0.0, 100.0, 100.0], [0.0, 0.0, 100.0, 60.0]])
    assert (box_coverage(everything, W, H), box_coverage(everything, W, H, "sum")) == (1.0, pytest.approx(1.6))


def body(n, score=0.9):
    """Keypoint scores of a person whose pose model is confident of its first `n` keypoints."""
    scores = np.full(17, 0.1)
    scores[:n] = score
    return scores


def test_a_box_without_a_body_is_not_a_person_and_is_recorded_with_its_values():
    boxes = np.array([[0.0, 0.0, 10.0, 100.0], [0.0, 0.0, 100.0, 90.0]])  # a person; a near full-frame box
    scores = np.array([0.9, 0.8])
    keypoints = np.array([body(17), body(2)])  # the big box: two confident keypoints (two hands)
    seen = frame_people(boxes, scores, W, H, keypoints)
    assert (seen.count, seen.coverage, seen.coverage_sum) == (1, pytest.approx(0.1), pytest.approx(0.1))
    assert seen.not_people == [[0.8, 2, 0.9]]  # score, confident keypoints, box area / frame area
    d = decide([(boxes, scores)] * 16, keypoint_scores_per_frame=[keypoints] * 16)
    assert (d.verdict, d.value) == ("kept", pytest.approx(0.1))
    assert d.detail["people_per_frame"] == [1] * 16 and d.detail["not_people_per_frame"] == [[[0.8, 2, 0.9]]] * 16
    assert (d.detail["min_person_keypoints"], d.detail["person_keypoint_score"]) == (6, 0.3)
    alone = decide([(boxes[1:], scores[1:])] * 16, keypoint_scores_per_frame=[keypoints[1:]] * 16)
    assert (alone.verdict, alone.metric, alone.value) == ("dropped", "people_count", 0.0)


@pytest.mark.parametrize("confident, counted", [(5, False), (6, True), (17, True)])
def test_a_person_needs_six_keypoints_scored_at_least_point_three(confident, counted):
    assert person_mask(np.array([0.9]), body(confident)[None]).tolist() == [counted]
    assert person_mask(np.array([0.9]), body(17, score=0.29)[None]).tolist() == [False]
    assert person_mask(np.array([0.9]), body(2)[None], min_person_keypoints=2).tolist() == [True]
    assert person_mask(np.array([0.1]), body(17)[None]).tolist() == [False]  # the score still counts


def test_without_keypoints_people_count_on_their_score_and_the_record_says_so():
    d = decide([people(2)] * 16)
    assert d.verdict == "kept" and d.detail["min_person_keypoints"] is None
    assert frame_presence(*people(2), W, H, keypoint_scores=np.array([body(3)] * 2)) == (0, 0.0)


def test_low_score_people_are_not_counted():
    boxes, _ = people(6)
    scores = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.1])
    assert frame_presence(boxes, scores, W, H, min_person_score=0.2) == (5, pytest.approx(0.5))
    assert decide([(boxes, scores)] * 16, min_person_score=0.2).verdict == "kept"
    assert decide([(boxes, scores)] * 16, min_person_score=0.05).verdict == "dropped"


def test_thresholds_are_parameters_and_recorded():
    d = decide([people(6)] * 16, max_people=8, min_coverage=0.7, timestamps=[i + 0.5 for i in range(16)])
    assert d.verdict == "dropped" and d.metric == "box_coverage" and d.threshold == 0.7
    assert d.detail["max_people"] == 8 and len(d.detail["timestamps_s"]) == 16
