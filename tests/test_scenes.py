"""The paper's scene-length rule on plain data: keep 5 s <= length <= 20 s."""

from __future__ import annotations

from haic_core.accumulation.scenes import clip_id_for, judge_clip_length, split_video_into_clips, video_id_of_clip_id


def test_cuts_become_contiguous_scenes_covering_the_video():
    clips, _ = split_video_into_clips("v1", [1.2, 3.04], [30, 76], duration_s=10.0, frame_count=250, fps=25)
    assert [(c.start_s, c.end_s, c.start_frame, c.end_frame) for c in clips] == \
        [(0.0, 1.2, 0, 30), (1.2, 3.04, 30, 76), (3.04, 10.0, 76, 250)]
    assert [c.length_s for c in clips] == [1.2, 1.84, 6.96]


def test_no_cut_means_one_scene_and_ids_are_deterministic():
    (clip,), _ = split_video_into_clips("v1", [], [], duration_s=20.0, frame_count=200, fps=10)
    assert clip.clip_id == clip_id_for("v1", 0.0, 20.0) and clip.clip_id.startswith("v1-")
    assert clip.clip_id != clip_id_for("v1", 0.0, 19.9) != clip_id_for("v2", 0.0, 20.0)


def test_exactly_twenty_seconds_is_kept_despite_float_noise():
    (clip,), (decision,) = split_video_into_clips("v", [], [], duration_s=0.1 * 200 + 4e-15, frame_count=200, fps=10)
    assert decision.verdict == "kept" and decision.value == 20.0


def test_too_short_and_too_long_scenes_are_dropped_with_their_length():
    clips, decisions = split_video_into_clips("v", [2.57, 22.57], [72, 632], duration_s=50.0,
                                              frame_count=1400, fps=28)
    short, good, long_ = decisions
    assert [d.item_id for d in decisions] == [c.clip_id for c in clips]
    assert (short.verdict, short.reason, short.metric, short.value, short.threshold) == \
        ("dropped", "scene 2.57 s < 5.0 s", "clip_length_s", 2.57, 5.0)
    assert (good.verdict, good.value, good.item_kind, good.parent_id) == \
        ("kept", 20.0, "clip", "v")
    assert (long_.verdict, long_.reason, long_.value, long_.threshold) == \
        ("dropped", "scene 27.43 s > 20.0 s", 27.43, 20.0)


def test_length_bounds_are_parameters():
    (clip,), _ = split_video_into_clips("v", [], [], duration_s=25.0, frame_count=250, fps=10)
    assert judge_clip_length(clip).reason == "scene 25.00 s > 20.0 s"
    assert judge_clip_length(clip, max_length_s=30.0).verdict == "kept"
    assert judge_clip_length(clip, min_length_s=26.0, max_length_s=40.0).verdict == "dropped"


def test_video_id_is_read_back_from_a_clip_id():
    clip_id = clip_id_for("yt_abc-123", 1.5, 9.25)
    assert len(clip_id) == len("yt_abc-123-") + 10
    assert video_id_of_clip_id(clip_id) == "yt_abc-123"
    assert video_id_of_clip_id("v-0123456789") == "v"
    assert video_id_of_clip_id("v-a-b-abcdef0123") == "v-a-b"


def test_ids_not_made_by_the_scene_split_have_no_video_id():
    assert video_id_of_clip_id("sam2_juggle_1p") is None
    assert video_id_of_clip_id("v-012345678") is None  # 9 hex digits
    assert video_id_of_clip_id("v-0123456789a") is None  # 11
    assert video_id_of_clip_id("v-ABCDEF0123") is None  # hexdigest() is lower case
    assert video_id_of_clip_id("-0123456789") is None  # no video id before the hash
    assert video_id_of_clip_id("v-0123456789\n") is None


def test_at_most_max_clips_per_video_are_kept_the_earliest_first():
    from haic_core.accumulation.scenes import CandidateClip, at_most_per_video
    from haic_core.decisions import dropped, kept

    def clip(clip_id, video_id, start_s):
        return CandidateClip(clip_id, video_id, start_s, start_s + 6, 0, 1, 25.0, 6.0)

    clips = [clip("v1-c", "v1", 20.0), clip("v1-a", "v1", 0.0), clip("v1-b", "v1", 10.0), clip("v2-a", "v2", 0.0)]
    decisions = [kept("v1-c", "fits"), kept("v1-a", "fits"), dropped("v1-b", "short"), kept("v2-a", "fits")]
    capped = at_most_per_video(clips, decisions, most=1)
    assert [(d.item_id, d.verdict, d.reason, d.metric, d.value, d.threshold) for d in capped] == [
        ("v1-c", "dropped", "clip 2 of its video: more than 1 clips of one video", "clips_of_video", 2.0, 1.0),
        ("v1-a", "kept", "fits", None, None, None),
        ("v1-b", "dropped", "short", None, None, None),
        ("v2-a", "kept", "fits", None, None, None),
    ]
