"""pose_tracks: people at 1 fps linked into tracklets by maximal total IoU between adjacent samples (an
assignment; keypoint similarity breaks ties), recording the identity switches the greedy reading would have made."""

import numpy as np
import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.decisions import kept
from haic_core.accumulation.pose_rows import TRACK_COLUMNS, clip_track_rows
from haic_core.accumulation.presence import MIN_PERSON_KEYPOINTS, PERSON_KEYPOINT_SCORE, person_mask
from haic_core.accumulation.tracklets import KEYPOINT_TIEBREAK, MIN_IOU
from haic_platform.stage import StageContext, StageResult, partitioned_stage

TRACK_COLUMN_DOCS = {
    "clip_id": "the clip (clips.clip_id)",
    "track_id": "the tracklet: one person followed across the clip's 1-per-second frames by maximal IoU",
    "sample": "index of the 1-per-second frame",
    "t": "its instant in the clip, seconds",
    "box": "x1, y1, x2, y2 of the person's box, divided by the frame's width and height",
    "keypoints": "17 COCO keypoints as [x, y, score], x and y divided by the frame's width and height",
    "score": "the detector's confidence in the person",
}


class PoseTracksConfig(Config):
    min_iou: float = Field(default=MIN_IOU, ge=0.0, le=1.0, description="two detections in adjacent 1 fps samples are one person "
                                                        "from this IoU")
    linking: str = Field(default="assignment", description="assignment: the one-to-one pairing of largest total "
                                                            "IoU ('maximal IoU' across people); greedy: largest IoU "
                                                            "first (can swap two people whose boxes overlap)")
    keypoint_tiebreak: float = Field(default=KEYPOINT_TIEBREAK, ge=0.0,
                                     description="weight of keypoint similarity (OKS, 0-1) beside IoU in the "
                                                 "assignment: it decides only between pairings within this much "
                                                 "total IoU per person (0 = IoU alone)")
    min_person_score: float = Field(default=0.2, ge=0.0, le=1.0, description="detections below this score are not tracked "
                                                             "(setting shared with human_presence)")
    min_person_keypoints: int = Field(default=MIN_PERSON_KEYPOINTS, ge=0, le=17,
                                      description="detections with fewer confident keypoints are no person and "
                                                  "are not tracked (setting shared with human_presence)")
    person_keypoint_score: float = Field(default=PERSON_KEYPOINT_SCORE, ge=0.0, le=1.0,
                                         description="(setting shared with human_presence)")


@partitioned_stage("pose_tracks", PoseTracksConfig, ins=("human_presence", "person_detections"), column_docs=TRACK_COLUMN_DOCS,
                   settings_from={name: "human_presence" for name in ("min_person_score", "min_person_keypoints",
                                                                      "person_keypoint_score")})
def pose_tracks(stage: StageContext, config: PoseTracksConfig, human_presence: pd.DataFrame,
                person_detections: pd.DataFrame) -> StageResult:
    """Per clip that passed human presence: tracklets of people at 1 fps — track id, time, box,
    17 × (x, y, score) keypoints, normalized by frame width and height."""
    people = person_mask(person_detections["score"].to_numpy(),
                         [list(k) for k in person_detections["keypoint_scores"]] if len(person_detections) else None,
                         config.min_person_score, config.min_person_keypoints, config.person_keypoint_score)
    # .loc with a boolean array: a plain [] with an empty mask would select columns, not rows.
    tracked = person_detections.loc[person_detections["pose_sample"].to_numpy(dtype=bool) & np.asarray(people, dtype=bool)]
    by_clip = dict(tuple(tracked.groupby("clip_id", sort=False)))
    rows, decisions = [], []
    for clip in human_presence.itertuples(index=False):
        clip_rows, lengths, linked = clip_track_rows(clip.clip_id, list(clip.pose_times),
                                                     by_clip.get(clip.clip_id, tracked.iloc[0:0]), config.min_iou,
                                                     linking=config.linking, keypoint_tiebreak=config.keypoint_tiebreak)
        rows += clip_rows
        avoided = linked.as_detail()["switches_avoided"]
        reason = f"{len(lengths)} tracklets over {len(clip.pose_times)} samples at 1 fps" + (
            f"; {avoided} identity switches of greedy linking avoided" if avoided else "")
        decisions.append(kept(clip.clip_id, reason,
                              item_kind="clip", parent_id=clip.video_id, metric="tracklets", value=float(len(lengths)),
                              detail={"samples": len(clip.pose_times), "tracklet_lengths": lengths,
                                      **linked.as_detail()}))
    table = pd.DataFrame(rows, columns=TRACK_COLUMNS)
    tracklets = int(table.groupby(["clip_id", "track_id"]).ngroups) if len(table) else 0
    switches = sum(d.detail["switches_avoided"] for d in decisions)
    return StageResult(table, decisions, metadata={"tracklets": tracklets, "switches_avoided": switches},
                       preview=["clip_id", "track_id", "t", "score"])
