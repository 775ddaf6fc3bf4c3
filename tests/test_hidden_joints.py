"""Joints hidden behind a table: are they above the keypoint score cut, where are they drawn, and what
do they add to the motion L1? (issue: in a documentary clip of two women at a table, hips hidden by the
table added 0.06-0.10 per pair and legs were drawn through the table.)

The case is made from the shared media (tests/people_cases.py): the white table top of the coffee clip
is put in front of the standing woman of the NTU drinking clip and of the two people hugging, from just
above their hips down; samples every 0.25 s (0.2 s for the short hug). The same people without the table
are the reference. Measured, the default people model (YOLOX-nano box + MoveNet on the box's crop) and
MoveNet alone (its box drawn around its own keypoints), and the motion filters with and without
`joints_in_box` (a joint counts only inside its person's box in both samples).
"""

from __future__ import annotations

import numpy as np
import pytest

from haic_core.accumulation.motion import inside_box, measure_clip, normalize_keypoints, valid_keypoints
from haic_core.accumulation.presence import person_mask
from haic_core.accumulation.tracklets import build_tracks, link_people
from haic_resources.pose.estimator import boxes_of, keypoint_scores_of, keypoints_of, scores_of
from haic_resources.pose.settings import PoseSettings, make_estimator
from haic_resources.video.frame_reader import read_frames_at
from tests.people_cases import behind_table, table_image

pytestmark = pytest.mark.slow

HIPS, KNEES_AND_ANKLES = [11, 12], [13, 14, 15, 16]
CASES = {  # clip: (sample times, table top as a fraction of the frame's height)
    "mmaction2_ntu_drink_static_1p.avi": ([round(0.2 + 0.25 * i, 2) for i in range(13)], 0.44),
    "mmaction2_ntu_hug_2p_short.mp4": ([round(0.1 + 0.2 * i, 2) for i in range(12)], 0.5),
}


@pytest.fixture(scope="module")
def measured(tmp_path_factory, media_dir):
    cache = str(tmp_path_factory.mktemp("models"))
    models = {"default": make_estimator(PoseSettings(cache_dir=cache)),
              "movenet": make_estimator(PoseSettings(cache_dir=cache, backend="movenet"))}
    table = table_image(media_dir)
    out = {}
    for clip, (times, top_frac) in CASES.items():
        for name, model in models.items():
            frames = [f.image for f in read_frames_at(str(media_dir / "videos" / clip), times, 0.0, 10.0,
                                                      long_side=model.input_long_side).frames]
            top = int(frames[0].shape[0] * top_frac)
            out[clip, name, "table"] = tracks_of(model, [behind_table(f, table, top) for f in frames]), top
            out[clip, name, "open"] = tracks_of(model, frames), top
    return out


def tracks_of(model, frames):
    height, width = frames[0].shape[:2]
    people = [[p for p, ok in zip(ps, person_mask(scores_of(ps), keypoint_scores_of(ps))) if ok]
              for ps in model.estimate(frames)]
    boxes = [boxes_of(ps) / [width, height, width, height] for ps in people]
    keypoints = [normalize_keypoints(keypoints_of(ps), width, height) for ps in people]
    scores = [keypoint_scores_of(ps) for ps in people]
    ids = link_people(boxes, keypoints_per_frame=keypoints, keypoint_scores_per_frame=scores).ids_per_frame
    return [t for t in build_tracks(ids, boxes, keypoints, scores) if len(t) >= 4], height


def hidden_l1(track, height: int, top: int, joints_in_box: bool) -> float:
    """Mean over the track's adjacent pairs of the L1 (rescaled to 17 keypoints, as the filter does) of the
    measured joints drawn at or below the table's edge (3 px above it, or lower) in either sample."""
    values = []
    for a in range(len(track) - 1):
        valid = valid_keypoints(track.keypoint_scores[a], track.keypoint_scores[a + 1])
        if joints_in_box:
            valid &= inside_box(track.keypoints[a], track.boxes[a]) & inside_box(track.keypoints[a + 1], track.boxes[a + 1])
        low = (track.keypoints[a:a + 2, :, 1] * height > top - 3).any(axis=0)
        moved = np.abs(track.keypoints[a + 1] - track.keypoints[a]).sum(axis=1)
        values.append(moved[valid & low].sum() * 17 / max(int(valid.sum()), 1))
    return float(np.mean(values))


def test_hips_hidden_by_the_table_are_scored_above_the_cut(measured):
    above = {}
    for clip in CASES:
        (open_tracks, _), _ = measured[clip, "default", "open"]
        (table_tracks, _), _ = measured[clip, "default", "table"]
        seen = np.concatenate([t.keypoint_scores[:, HIPS] for t in open_tracks])
        hidden = np.concatenate([t.keypoint_scores[:, HIPS] for t in table_tracks])
        print(f"\n{clip}: hips in the open {seen.min():.2f}-{seen.max():.2f}; behind the table "
              f"{hidden.min():.2f}-{hidden.max():.2f}, median {np.median(hidden):.2f}, "
              f"{int((hidden >= 0.3).sum())}/{hidden.size} above the 0.3 cut; knees and ankles behind it at most "
              f"{max(t.keypoint_scores[:, KNEES_AND_ANKLES].max() for t in table_tracks):.2f}")
        assert seen.min() >= 0.7
        assert max(t.keypoint_scores[:, KNEES_AND_ANKLES].max() for t in table_tracks) < 0.3
        above[clip] = (int((hidden >= 0.3).sum()), hidden.size)
    # Measured: the drinker's hidden hips pass the cut in 20 of 26 hip-samples (median 0.40), the huggers' in 12
    # of 30 (one of the two hides hers well: median 0.12 for both); knees and ankles stay under it (0.14, 0.22).
    assert above == {"mmaction2_ntu_drink_static_1p.avi": (20, 26), "mmaction2_ntu_hug_2p_short.mp4": (12, 30)}


def test_movenet_alone_draws_legs_through_the_table_inside_its_own_box(measured):
    for clip in CASES:
        (tracks, height), top = measured[clip, "movenet", "table"]
        for joints_in_box in (False, True):
            print(f"\n{clip} movenet joints_in_box={joints_in_box}: L1 of joints at the table's edge or below per "
                  f"pair {[round(hidden_l1(t, height, top, joints_in_box), 3) for t in tracks]}")
        # Its box is drawn around its keypoints: the box rule cannot tell a hidden joint from a seen one.
        assert [hidden_l1(t, height, top, True) for t in tracks] == [hidden_l1(t, height, top, False) for t in tracks]
        assert max(hidden_l1(t, height, top, False) for t in tracks) > 0.03


def test_the_default_crop_ends_at_the_table_and_the_box_rule_leaves_out_what_is_drawn_below(measured):
    for clip in CASES:
        (tracks, height), top = measured[clip, "default", "table"]
        (movenet_tracks, movenet_height), movenet_top = measured[clip, "movenet", "table"]
        with_rule = [hidden_l1(t, height, top, True) for t in tracks]
        without = [hidden_l1(t, height, top, False) for t in tracks]
        print(f"\n{clip} default: L1 of joints at the table's edge or below per pair {np.round(without, 3).tolist()} "
              f"-> {np.round(with_rule, 3).tolist()} inside the box; box bottoms "
              f"{[round(float(t.boxes[:, 3].mean() * height)) for t in tracks]} px, table top {top} px")
        # Measured: drinker 0.013 -> 0.011, huggers 0.015 and 0.005 -> 0.013 and 0.002 (MoveNet alone: 0.033;
        # 0.036 and 0.067), the boxes' bottoms 3-4 px under the table's top edge.
        assert all(w <= wo for w, wo in zip(with_rule, without)) and sum(with_rule) < sum(without)
        assert max(with_rule) < max(hidden_l1(t, movenet_height, movenet_top, False) for t in movenet_tracks)
        assert all(abs(t.boxes[:, 3].mean() * height - top) < 0.03 * height for t in tracks)  # the box stops there


def test_the_box_rule_leaves_the_motion_of_people_in_the_open_as_it_was(measured):
    for clip in CASES:
        (tracks, _), _ = measured[clip, "default", "open"]
        for t in tracks:
            boxed, free = measure_clip([t], pair_aggregate="mean"), measure_clip([t], pair_aggregate="mean",
                                                                                joints_in_box=False)
            print(f"\n{clip} in the open, track {t.track_id}: L1 {free.l1:.3f} -> {boxed.l1:.3f} with the box rule")
            assert boxed.l1 == pytest.approx(free.l1, rel=0.25)
