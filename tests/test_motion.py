"""Keypoint-motion (L1 > 0.085) and camera-motion (affine residual > 0.0016) filters."""

import math

import numpy as np
import pytest

from haic_core.accumulation.motion import (
    affine_fit, camera_motion_decision, keypoint_motion_decision, measure_clip, motion_decision,
    normalize_keypoints, pair_l1,
)  # fmt: skip
from haic_core.accumulation.tracklets import Track


def star_pose():
    """17 normalized keypoints symmetric about (0.5, 0.5): Σu = Σv = Σuv = 0, Σu² = Σv² = 0.30.

    Centre point (index 0), then offsets (±0.1, 0), (0, ±0.1), (±0.1, ±0.1), and the same at 0.2.
    In such a layout the least-squares leverage of the centre point is exactly 1/17.
    """
    offsets = [(0.0, 0.0)]
    for r in (0.1, 0.2):
        offsets += [(r, 0), (-r, 0), (0, r), (0, -r), (r, r), (r, -r), (-r, r), (-r, -r)]
    return np.array(offsets) + 0.5


def track(poses, scores=None, track_id=0):
    poses = np.asarray(poses, dtype=float)
    if scores is None:
        scores = np.ones(poses.shape[:2])
    # The whole frame as the box: these tests are about the keypoints (joints in the box: test_hidden_joints).
    return Track(track_id, np.arange(len(poses)), np.tile([0.0, 0.0, 1.0, 1.0], (len(poses), 1)), poses,
                 np.asarray(scores, float))


def affine(points, a, t):
    return points @ np.asarray(a).T + np.asarray(t)


# ---------------------------------------------------------------- L1, by hand
def test_l1_of_a_pure_translation():
    p = star_pose()
    assert pair_l1(p, p + [0.01, 0.02]) == pytest.approx(17 * 0.03)  # 0.51


def test_l1_of_one_moving_wrist():
    p = star_pose()
    q = p.copy()
    q[9] += [0.05, -0.03]
    assert pair_l1(p, q) == pytest.approx(0.08)


def test_low_confidence_keypoints_are_excluded_and_l1_rescaled_to_17():
    p = star_pose()
    q = p + [0.01, 0.0]
    q[9] += [0.5, 0.5]  # a joint the model lost, jumping across the frame
    scores = np.ones((2, 17))
    scores[1, 9] = 0.1  # low confidence in one frame of the pair excludes it from both
    m = measure_clip([track([p, q], scores)])
    # 16 valid keypoints moved 0.01 each: 0.16, rescaled by 17/16 -> 0.17 (not 0.16 + 1.0)
    assert m.l1 == pytest.approx(0.17)
    assert m.tracks[0].valid_keypoints == [16]


def test_pair_with_too_few_confident_keypoints_is_skipped():
    p = star_pose()
    scores = np.zeros((2, 17))
    scores[:, :5] = 1.0  # 5 valid < 6
    m = measure_clip([track([p, p + 0.3], scores)])
    assert math.isnan(m.tracks[0].pair_l1[0]) and math.isnan(m.l1)
    d = motion_decision("c", m)
    assert d.verdict == "dropped" and d.value is None and d.metric == "keypoint_l1"


def test_pair_and_track_aggregation():
    p = star_pose()
    # steps of L1 0.17 (all move 0.01) then 0.51 (all move 0.03): min 0.17, mean 0.34
    mover = track([p, p + [0.01, 0], p + [0.04, 0]], track_id=0)
    still = track([p, p, p], track_id=1)
    assert measure_clip([mover], "min").l1 == pytest.approx(0.17)
    assert measure_clip([mover], "mean").l1 == pytest.approx(0.34)
    assert measure_clip([mover, still], "min", "any").l1 == pytest.approx(0.17)
    assert measure_clip([mover, still], "min", "all").l1 == 0.0
    assert keypoint_motion_decision("c", measure_clip([mover, still], "min", "all")).verdict == "dropped"


def test_min_over_pairs_is_the_literal_all_pairs_reading():
    p = star_pose()
    q = p.copy()
    q[9] += [0.2, 0.0]  # one step of L1 0.2, then a frozen step (L1 0)
    t = track([p, q, q])
    assert keypoint_motion_decision("c", measure_clip([t], "min")).verdict == "dropped"
    assert keypoint_motion_decision("c", measure_clip([t], "mean")).verdict == "kept"  # mean 0.1


def test_normalization_by_width_and_height():
    kp = np.array([[640.0, 360.0]] * 17)
    assert normalize_keypoints(kp, 1280, 720)[0].tolist() == [0.5, 0.5]


# ---------------------------------------------------------------- affine residual, by hand
@pytest.mark.parametrize(
    "name, a, t",
    [
        ("translation", np.eye(2), [0.03, -0.02]),
        ("rotation", [[math.cos(0.3), -math.sin(0.3)], [math.sin(0.3), math.cos(0.3)]], [0.0, 0.0]),
        ("scale (zoom)", [[1.2, 0.0], [0.0, 1.2]], [-0.1, -0.1]),
        ("shear", [[1.0, 0.25], [0.0, 1.0]], [0.0, 0.0]),
        ("all together", [[1.1 * math.cos(0.2), -0.9 * math.sin(0.2) + 0.1], [1.1 * math.sin(0.2), 0.9 * math.cos(0.2)]], [0.05, 0.01]),
    ],
)
def test_affine_motion_has_zero_residual_and_is_rejected(name, a, t):
    p = star_pose()
    q = affine(p, a, t)
    fitted, residual = affine_fit(p, q)
    assert residual == pytest.approx(0.0, abs=1e-20)
    assert fitted == pytest.approx(np.hstack([np.asarray(a), np.asarray(t)[:, None]]))
    poses = [p]
    for _ in range(4):
        poses.append(affine(poses[-1], a, t))
    m = measure_clip([track(poses)])
    assert m.l1 > 0.085  # the keypoints move: the motion filter alone would keep it
    d = motion_decision("c", m)
    assert (d.verdict, d.metric, d.threshold) == ("dropped", "affine_residual", 0.0016)
    assert d.detail["keypoint_l1"] == pytest.approx(m.l1, abs=1e-6)


def test_residual_matches_what_lstsq_reports():
    rng = np.random.default_rng(0)
    p = star_pose()
    q = p + rng.normal(0, 0.02, p.shape)
    x = np.hstack([p, np.ones((17, 1))])
    _, lstsq_res, *_ = np.linalg.lstsq(x, q, rcond=None)
    assert affine_fit(p, q)[1] == pytest.approx(lstsq_res.sum())


def test_articulated_motion_residual_by_hand():
    """Only the centre point moves by d; its leverage is 1/17, so the residual is |d|²·16/17."""
    p = star_pose()
    q = p.copy()
    q[0] += [0.1, 0.0]
    assert affine_fit(p, q)[1] == pytest.approx(0.01 * 16 / 17)  # 0.0094118 > 0.0016
    assert pair_l1(p, q) == pytest.approx(0.1)  # > 0.085
    d = motion_decision("c", measure_clip([track([p, q])]))
    assert d.verdict == "kept"
    assert d.detail["affine_residual"] == pytest.approx(0.0094118, abs=1e-6)
    assert d.detail["keypoint_l1"] == pytest.approx(0.1)


def test_small_articulated_motion_is_static():
    p = star_pose()
    q = p.copy()
    q[0] += [0.03, 0.0]  # L1 0.03, residual 0.0009 * 16/17 = 0.000847
    m = measure_clip([track([p, q])])
    assert m.residual == pytest.approx(0.0009 * 16 / 17)
    d = motion_decision("c", m)
    assert (d.verdict, d.metric, d.value, d.threshold) == ("dropped", "keypoint_l1", pytest.approx(0.03), 0.085)
    assert camera_motion_decision("c", m).verdict == "dropped"


def test_residual_is_averaged_over_pairs_then_tracklets():
    p = star_pose()
    q1, q2 = p.copy(), p.copy()
    q1[0] += [0.1, 0.0]  # residual 0.01·16/17
    q2[0] += [0.2, 0.0]  # residual 0.04·16/17
    a = track([p, q1, q1 + 0.02], track_id=0)  # pairs: 0.01·16/17, then 0 (translation) -> 0.005·16/17
    b = track([p, q2], track_id=1)  # 0.04·16/17
    m = measure_clip([a, b])
    assert m.residual == pytest.approx((0.005 + 0.04) / 2 * 16 / 17)
    assert measure_clip([a, b], residual_track_aggregate="max").residual == pytest.approx(0.04 * 16 / 17)


def test_decision_records_both_values_and_thresholds():
    p = star_pose()
    q = p.copy()
    q[0] += [0.1, 0.0]
    d = motion_decision("clip-7", measure_clip([track([p, q])]), parent_id="video-7")
    assert d.item_kind == "clip" and d.parent_id == "video-7"
    assert d.detail["min_l1"] == 0.085 and d.detail["min_residual"] == 0.0016
    assert d.detail["tracks"][0]["pair_l1"] == [pytest.approx(0.1)]


# ---------------------------------------------------------------- hidden joints
def test_a_joint_outside_its_persons_box_is_not_motion():
    # A person standing still behind a table (box: the visible upper body, y 0.3-0.6); the model draws a
    # hip it cannot see at the table's edge, below the box, and it wanders 0.05 between the samples.
    p = star_pose()
    q = p.copy()
    hip = 1  # star_pose's (0.6, 0.5): moved below the box in both samples
    p[hip], q[hip] = [0.55, 0.65], [0.60, 0.65]
    boxes = np.array([[0.25, 0.25, 0.75, 0.6]] * 2)
    inside = (p[:, 1] <= 0.6)
    t = Track(0, np.arange(2), boxes, np.array([p, q]), np.ones((2, 17)))
    counted = measure_clip([t], joints_in_box=False)
    assert counted.l1 == pytest.approx(0.05) and counted.tracks[0].valid_keypoints == [17]
    boxed = measure_clip([t])  # the default reading
    assert boxed.settings["joints_in_box"] is True
    assert boxed.l1 == 0.0 and boxed.tracks[0].valid_keypoints == [int(inside.sum())]
