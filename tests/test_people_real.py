"""People as a careful person sees them, on real media with the default people model (the shipped
YOLOX-nano, tiled for crowds, + MoveNet keypoints on each person's crop): a close-up of two hands is
nobody, two people hugging cover the union of their boxes, two walkers keep their identities, and
the annotated crowd frames are counted.

The close-up is cut at test time from ../shared/media (tests/people_cases.py); the crowd frames are
PoseTrack18's that mmpose keeps as test data, not part of ../shared/media: the test runs where a copy
is found (HAIC_TEST_POSETRACK, or ../shared/media/images/posetrack18) and says it was skipped elsewhere.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from haic_cli.main import main
from haic_core.accumulation.presence import person_mask
from haic_core.accumulation.tracklets import iou_matrix, link_people
from haic_resources.pose.clip_people import sample_clip_people
from haic_resources.pose.estimator import boxes_of, keypoint_scores_of, keypoints_of, scores_of
from haic_resources.pose.settings import PoseSettings, make_estimator
from haic_resources.video.frame_reader import read_frames_at
from tests.conftest import SHARED_MEDIA
from tests.human_filter_chain import clip_window, human_filter_chain
from tests.people_cases import COFFEE, HANDS, cut_close_up
from tests.test_tracklets import WALKERS_AT_8, WALKERS_AT_9

pytestmark = pytest.mark.slow

POSETRACK = Path(os.environ.get("HAIC_TEST_POSETRACK", SHARED_MEDIA / "images" / "posetrack18"))


@pytest.fixture(scope="module")
def default_model(tmp_path_factory):
    return make_estimator(PoseSettings(cache_dir=str(tmp_path_factory.mktemp("models"))))


def people_of(estimator, image):
    people = estimator.estimate([image])[0]
    return [p for p, ok in zip(people, person_mask(scores_of(people), keypoint_scores_of(people))) if ok]


def test_a_close_up_of_two_hands_is_nobody_and_its_box_is_recorded(tmp_path, monkeypatch, video, capsys):
    close_up = cut_close_up(video(COFFEE), tmp_path / "hands.mp4", 1.0, 8.0, HANDS)
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    for name in ("HAIC_POSE_BACKEND", "HAIC_POSE_DETECTOR_MODEL", "HAIC_POSE_MODEL", "HAIC_POSE_NMS_IOU"):
        monkeypatch.delenv(name, raising=False)
    assert main(["people", str(close_up), "--json"]) == 0
    frames = json.loads(capsys.readouterr().out)["frames"]
    assert len(frames) == 16 and [f["count"] for f in frames] == [0] * 16
    # Measured: the detector puts one near full-frame box on the hands (and the torso between them) in every
    # sample, and in 6 samples a second one on a hand; MoveNet finds 0-3 confident keypoints in them.
    # Counted on their score alone (the old reading) they were 1-2 people covering 0.76-0.98 of the frame
    # (the sum), and the clip passed the presence test.
    boxes = [n for f in frames for n in f["not_people"]]
    assert {len(f["not_people"]) for f in frames} == {1, 2} and 20 <= len(boxes) <= 24  # measured: 22
    # At most 3 confident keypoints, far from a body's 6: measured 3 in one run and 2 in another (a joint
    # scored near the 0.3 cut; MoveNet on the re-encoded cut is not bit-stable from run to run).
    assert max(n["confident_keypoints"] for n in boxes) in (2, 3) and min(n["score"] for n in boxes) >= 0.2
    biggest = [max(n["box_coverage"] for n in f["not_people"]) for f in frames]
    old_sum = [sum(n["box_coverage"] for n in f["not_people"]) for f in frames]
    # (within 0.02: the close-up is encoded anew for each run)
    assert (min(biggest), max(biggest), max(old_sum)) == pytest.approx((0.76, 0.82, 0.98), abs=0.02)
    assert all(f["coverage"] == f["coverage_union"] == f["coverage_sum"] == 0.0 for f in frames)


def test_two_people_hugging_cover_the_union_of_their_boxes(default_model, video, media_dir):
    sample = sample_clip_people(str(video("mmaction2_ntu_hug_2p_short.mp4")),
                                *clip_window(media_dir, "mmaction2_ntu_hug_2p_short.mp4"), default_model)
    presence = human_filter_chain(sample, "hug")["presence"]
    d = presence.detail
    assert d["people_per_frame"] == [2] * 16 and d["coverage_mode"] == "union"
    union, total = np.array(d["coverage_union_per_frame"]), np.array(d["coverage_sum_per_frame"])
    assert d["coverage_per_frame"] == d["coverage_union_per_frame"]
    # Measured: apart in the first 5 samples, then in each other's arms: their boxes overlap by 0.012-0.033
    # of the frame, which the sum counts twice.
    overlap = total - union
    assert (overlap[:5] == 0).all() and (overlap[5:] > 0.01).all() and round(overlap.max(), 2) == 0.03
    assert presence.value == pytest.approx(union.min(), abs=1e-6)


def test_two_walkers_side_by_side_keep_their_identities(default_model, video):
    frames = read_frames_at(str(video("opencv_vtest_pedestrians_first20s.mp4")), [8.05, 9.05], 0.0, 20.0,
                            long_side=default_model.input_long_side).frames
    people = [people_of(default_model, f.image) for f in frames]
    boxes = [boxes_of(p) for p in people]
    # The measured boxes are the ones tests/test_tracklets.py links by hand.
    at_8, at_9 = WALKERS_AT_8, WALKERS_AT_9
    assert [len(b) for b in boxes] == [5, 5]
    for found, expected in zip(boxes, (at_8, at_9)):
        assert (iou_matrix(expected, found).max(axis=1) > 0.9).all()
    linked = link_people(boxes, keypoints_per_frame=[keypoints_of(p) for p in people],
                         keypoint_scores_per_frame=[keypoint_scores_of(p) for p in people])
    woman, man = (int(np.argmax(iou_matrix(at_8[[k]], boxes[0]))) for k in (1, 3))
    woman_next, man_next = (int(np.argmax(iou_matrix(at_9[[k]], boxes[1]))) for k in (0, 4))
    ids = linked.ids_per_frame
    assert (ids[1][woman_next], ids[1][man_next]) == (ids[0][woman], ids[0][man])
    assert linked.as_detail()["switches_avoided"] == 1
    greedy = link_people(boxes, method="greedy").ids_per_frame
    assert greedy[1][man_next] == greedy[0][woman]  # the greedy reading's switch: the man takes her identity


@pytest.mark.skipif(not (POSETRACK / "annotations" / "test_posetrack18_val.json").is_file(),
                    reason=f"the annotated PoseTrack18 crowd frames are not at {POSETRACK} (HAIC_TEST_POSETRACK)")
def test_the_default_counts_ten_of_the_fourteen_annotated_people_of_the_crowd_frames(default_model):
    from bench.eval_pose_accuracy import evaluate_crowd

    crowd = evaluate_crowd(default_model, POSETRACK, {"min_person_score": 0.2, "min_person_keypoints": 6})
    # Measured: 10/14 (8 of the 11 dancers, one of the two ballroom dancers, one in front of the other, and the
    # wrestler); MoveNet tiled, the former default, 7/14 (README "Counting people").
    assert crowd["annotated_people"] == 14 and crowd["found_iou50"] == 10
    assert [(f["found_iou50"], f["annotated"]) for f in crowd["frames"]] == [(8, 11), (1, 2), (1, 1)]
