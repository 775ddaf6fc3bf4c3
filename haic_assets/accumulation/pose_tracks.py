"""pose_tracks: people at 1 fps linked into tracklets by maximal IoU between adjacent samples."""

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from haic_core.decisions import kept
from haic_core.accumulation.tracklets import MIN_IOU, link_tracklets
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.platform.ledger import preview, record_decisions
from haic_assets.platform.partition_runs import BACKFILL_POLICY, each_partition
from haic_assets.platform.partitions import source_shards
from haic_assets.platform.settings import setting, stage_code_version

STAGE = "pose_tracks"


class PoseTracksConfig(Config):
    min_iou: float = Field(default=setting(STAGE, "min_iou", MIN_IOU),
                           description="two detections in adjacent 1 fps samples are one person from this IoU")
    min_person_score: float = Field(default=setting("human_presence", "min_person_score", 0.2),
                                    description="detections below this score are not tracked")


TRACK_COLUMNS = ["clip_id", "track_id", "sample", "t", "box", "keypoints", "score"]


def clip_track_rows(clip_id: str, pose_times: list[float], detections: pd.DataFrame,
                    min_iou: float) -> tuple[list[dict], dict[int, int]]:
    """Tracklet rows of one clip, and each tracklet's length in samples.

    Every 1 fps sample takes part, an empty one included: a sample where nobody was detected
    ends the tracklets, so two samples two seconds apart are never taken for adjacent ones.
    `sample` is the position in `pose_times`, which the motion tests use for adjacency.
    """
    at_time = dict(tuple(detections.groupby("t", sort=False)))
    frames = [at_time.get(t, detections.iloc[0:0]) for t in pose_times]
    ids = link_tracklets([np.array(f["box"].tolist(), dtype=np.float64).reshape(-1, 4) for f in frames],
                         min_iou=min_iou)
    rows, lengths = [], {}
    for sample, (t, frame, frame_ids) in enumerate(zip(pose_times, frames, ids)):
        for det, track_id in zip(frame.itertuples(index=False), frame_ids):
            xy = np.asarray(det.keypoints, dtype=np.float64).reshape(17, 2)
            keypoints = np.column_stack([xy, np.asarray(det.keypoint_scores, dtype=np.float64)])
            rows.append({"clip_id": clip_id, "track_id": int(track_id), "sample": sample, "t": float(t),
                         "box": list(det.box), "keypoints": keypoints.round(6).tolist(), "score": det.score})
            lengths[int(track_id)] = lengths.get(int(track_id), 0) + 1
    return rows, lengths


@asset(
    partitions_def=source_shards,
    io_manager_key="tables",
    group_name="accumulation",
    code_version=stage_code_version(STAGE, PoseTracksConfig),
    description="Per clip that passed human presence: tracklets of people at 1 fps — track id, time, box, "
                "17 × (x, y, score) keypoints, normalized by frame width and height.",
    backfill_policy=BACKFILL_POLICY,
)
def pose_tracks(context: AssetExecutionContext, config: PoseTracksConfig, human_presence, person_detections,
                storage: StorageResource, warehouse: WarehouseResource) -> Output:
    return each_partition(context, _pose_tracks, inputs=("human_presence", "person_detections"), config=config,
                          human_presence=human_presence, person_detections=person_detections, storage=storage,
                          warehouse=warehouse)


def _pose_tracks(context: AssetExecutionContext, config: PoseTracksConfig, human_presence: pd.DataFrame,
                person_detections: pd.DataFrame, storage: StorageResource,
                warehouse: WarehouseResource) -> Output[pd.DataFrame]:
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
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(rows=len(table), tracklets=int(table.groupby(["clip_id", "track_id"]).ngroups) if len(table) else 0,
                    preview=preview(table, ["clip_id", "track_id", "t", "score"]))
    return Output(table, metadata=metadata)
