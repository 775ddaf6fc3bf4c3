"""pose_tracks: people at 1 fps linked into tracklets by maximal IoU between adjacent samples."""

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from haic_core.decisions import kept
from haic_core.tracklets import MIN_IOU, link_tracklets
from haic_resources.storage import StorageResource
from haic_resources.warehouse import WarehouseResource
from haic_assets.ledger import preview, record_decisions
from haic_assets.partition_runs import BACKFILL_POLICY, each_partition
from haic_assets.partitions import source_shards
from haic_assets.settings import setting, stage_code_version

STAGE = "pose_tracks"


class PoseTracksConfig(Config):
    min_iou: float = Field(default=setting(STAGE, "min_iou", MIN_IOU),
                           description="two detections in adjacent 1 fps samples are one person from this IoU")
    min_person_score: float = Field(default=setting("human_presence", "min_person_score", 0.2),
                                    description="detections below this score are not tracked")


TRACK_COLUMNS = ["clip_id", "track_id", "t", "box", "keypoints", "score"]


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
    samples = person_detections[person_detections["pose_sample"] & (person_detections["score"] >= config.min_person_score)]
    by_clip = dict(tuple(samples.groupby("clip_id", sort=False)))
    rows, decisions = [], []
    for clip in human_presence.itertuples(index=False):
        detections = by_clip.get(clip.clip_id, samples.iloc[0:0])
        times = sorted(person_detections.loc[(person_detections["clip_id"] == clip.clip_id)
                                             & person_detections["pose_sample"], "t"].unique())
        frames = [detections[detections["t"] == t] for t in times]
        boxes = [np.array(f["box"].tolist(), dtype=np.float64).reshape(-1, 4) for f in frames]
        ids = link_tracklets(boxes, min_iou=config.min_iou)
        for t, frame, frame_ids in zip(times, frames, ids):
            for det, track_id in zip(frame.itertuples(index=False), frame_ids):
                xy = np.asarray(det.keypoints, dtype=np.float64).reshape(17, 2)
                keypoints = np.column_stack([xy, np.asarray(det.keypoint_scores, dtype=np.float64)])
                rows.append({"clip_id": clip.clip_id, "track_id": int(track_id), "t": float(t),
                             "box": list(det.box), "keypoints": keypoints.round(6).tolist(), "score": det.score})
        lengths = {}
        for frame_ids in ids:
            for track_id in frame_ids:
                lengths[int(track_id)] = lengths.get(int(track_id), 0) + 1
        decisions.append(kept(clip.clip_id, f"{len(lengths)} tracklets over {len(times)} samples at 1 fps",
                              item_kind="clip", parent_id=clip.video_id, metric="tracklets", value=float(len(lengths)),
                              detail={"samples": len(times), "tracklet_lengths": lengths}))
    table = pd.DataFrame(rows, columns=TRACK_COLUMNS)
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(rows=len(table), tracklets=int(table.groupby(["clip_id", "track_id"]).ngroups) if len(table) else 0,
                    preview=preview(table, ["clip_id", "track_id", "t", "score"]))
    return Output(table, metadata=metadata)
