"""The human filters on one real clip in one call, for the tests and the bench.

The stages split this over three assets (human_presence, pose_tracks, action_filtered); here it
runs on one `ClipPeople` (one decode of the 16 presence samples and the 1 fps pose samples):
presence → 1 fps tracklets (maximal total IoU) → keypoint motion and affine residual, with the stages'
default readings (people need a body, coverage is the union of boxes, joints count inside their box).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from haic_core.accumulation.motion import measure_clip, motion_decision, normalize_keypoints
from haic_core.accumulation.presence import MIN_PERSON_KEYPOINTS, MIN_PERSON_SCORE, person_mask, presence_decision
from haic_core.accumulation.tracklets import build_tracks, link_people
from haic_resources.pose.clip_people import ClipPeople
from haic_resources.pose.estimator import boxes_of, keypoint_scores_of, keypoints_of, scores_of

# A clip window is the whole video, or for a video with scene cuts the scene that the scene stage
# would keep (5–20 s).
SCENE_WINDOWS = {
    "pyscenedetect_testvideo_slideshow.mp4": (6.01, 13.15),  # its longest in-range scene but one
    "pyscenedetect_goldeneye_vfr_drop3.mp4": (3.75, 8.76),   # the scene between its two cuts
}


@lru_cache(maxsize=4)
def _durations(media_dir: Path) -> dict[str, float]:
    manifest = json.loads((media_dir / "manifest.json").read_text())
    return {Path(entry["file"]).name: float(entry["duration_s"]) for entry in manifest["videos"]}


def clip_window(media_dir: Path, name: str) -> tuple[float, float]:
    """(start_s, end_s) of the clip the filters judge for the test video `name`."""
    return SCENE_WINDOWS.get(name) or (0.0, _durations(media_dir)[name])


def human_filter_chain(sample: ClipPeople, clip_id: str, min_person_score: float = MIN_PERSON_SCORE,
                       min_person_keypoints: int = MIN_PERSON_KEYPOINTS, **motion_options) -> dict:
    """Presence, tracklets, motion and the final decision (presence unless it keeps the clip, then motion)."""
    at = sample.presence_index
    rule = {"min_person_score": min_person_score, "min_person_keypoints": min_person_keypoints}
    presence = presence_decision(
        clip_id, [boxes_of(sample.people[i]) for i in at], [scores_of(sample.people[i]) for i in at],
        sample.width, sample.height, keypoint_scores_per_frame=[keypoint_scores_of(sample.people[i]) for i in at],
        timestamps=[sample.times[i] for i in at], **rule,
    )  # fmt: skip
    per_second = [[p for p, is_person in zip(people, person_mask(scores_of(people), keypoint_scores_of(people), **rule))
                   if is_person] for people in (sample.people[i] for i in sample.pose_index)]
    scale = [sample.width, sample.height] * 2
    boxes = [boxes_of(people) / scale for people in per_second]  # normalized, as the stages store them
    keypoints = [normalize_keypoints(keypoints_of(people), sample.width, sample.height) for people in per_second]
    scores = [keypoint_scores_of(people) for people in per_second]
    linking = link_people(boxes, keypoints_per_frame=keypoints, keypoint_scores_per_frame=scores)
    tracks = build_tracks(linking.ids_per_frame, boxes, keypoints, scores)
    motion = motion_decision(clip_id, measure_clip(tracks, **motion_options))
    final = presence if presence.verdict != "kept" else motion
    return {"presence": presence, "motion": motion, "final": final, "linking": linking, "tracks": tracks}
