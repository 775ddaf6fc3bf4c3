"""pose_tracks: people at 1 fps linked into tracklets by maximal IoU between adjacent samples."""

import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.decisions import kept
from haic_core.accumulation.pose_rows import TRACK_COLUMNS, clip_track_rows
from haic_core.accumulation.tracklets import MIN_IOU
from haic_assets.platform.stage import StageContext, StageResult, partitioned_stage


class PoseTracksConfig(Config):
    min_iou: float = Field(default=MIN_IOU, ge=0.0, le=1.0, description="two detections in adjacent 1 fps samples are one person "
                                                        "from this IoU")
    min_person_score: float = Field(default=0.2, ge=0.0, le=1.0, description="detections below this score are not tracked "
                                                             "(setting shared with human_presence)")


@partitioned_stage("pose_tracks", PoseTracksConfig, ins=("human_presence", "person_detections"),
                   settings_from={"min_person_score": "human_presence"})
def pose_tracks(stage: StageContext, config: PoseTracksConfig, human_presence: pd.DataFrame,
                person_detections: pd.DataFrame) -> StageResult:
    """Per clip that passed human presence: tracklets of people at 1 fps — track id, time, box,
    17 × (x, y, score) keypoints, normalized by frame width and height."""
    tracked = person_detections[person_detections["pose_sample"]
                                & (person_detections["score"] >= config.min_person_score)]
    by_clip = dict(tuple(tracked.groupby("clip_id", sort=False)))
    rows, decisions = [], []
    for clip in human_presence.itertuples(index=False):
        clip_rows, lengths = clip_track_rows(clip.clip_id, list(clip.pose_times),
                                             by_clip.get(clip.clip_id, tracked.iloc[0:0]), config.min_iou)
        rows += clip_rows
        decisions.append(kept(clip.clip_id, f"{len(lengths)} tracklets over {len(clip.pose_times)} samples at 1 fps",
                              item_kind="clip", parent_id=clip.video_id, metric="tracklets", value=float(len(lengths)),
                              detail={"samples": len(clip.pose_times), "tracklet_lengths": lengths}))
    table = pd.DataFrame(rows, columns=TRACK_COLUMNS)
    tracklets = int(table.groupby(["clip_id", "track_id"]).ngroups) if len(table) else 0
    return StageResult(table, decisions, metadata={"tracklets": tracklets}, preview=["clip_id", "track_id", "t", "score"])
