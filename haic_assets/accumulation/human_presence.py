"""human_presence: 16 uniformly sampled frames per clip; every one must show 1–5 people covering ≥ 10 %.

One decoding pass per clip also yields the 1 fps frames for pose tracking; their people are
stored in `person_detections`, so pose_tracks never decodes the clip again.
"""

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, AssetOut, Config, Output, multi_asset
from pydantic import Field

from haic_core.decisions import error
from haic_core.accumulation.presence import presence_decision
from haic_resources.pose.clip_people import sample_clip_people
from haic_resources.pose.contact_sheet import contact_sheet
from haic_resources.pose.estimator import boxes_of, scores_of
from haic_resources.pose.resource import PoseResource
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.platform.ledger import preview, record_decisions
from haic_assets.platform.deployment import k8s_op_tags
from haic_assets.platform.partition_runs import BACKFILL_POLICY, PartitionScope, PartitionTables, merge_metadata
from haic_assets.platform.partitions import source_shards
from haic_assets.platform.previews import png_metadata
from haic_assets.platform.settings import setting, stage_code_version

STAGE = "human_presence"


class HumanPresenceConfig(Config):
    samples: int = Field(default=setting(STAGE, "samples", 16), description="paper: 16 uniformly sampled frames")
    min_people: int = Field(default=setting(STAGE, "min_people", 1), description="paper: at least 1 person per frame")
    max_people: int = Field(default=setting(STAGE, "max_people", 5), description="paper: at most 5 people per frame")
    min_coverage: float = Field(default=setting(STAGE, "min_coverage", 0.10),
                                description="paper: people's boxes cover at least 10 % of the frame")
    coverage_mode: str = Field(default=setting(STAGE, "coverage_mode", "sum"),
                               description="sum of clipped box areas (our reading) or union")
    min_person_score: float = Field(default=setting(STAGE, "min_person_score", 0.2),
                                    description="a detection counts as a person from this score")
    pose_fps: float = Field(default=setting("pose_tracks", "pose_fps", 1.0),
                            description="paper: keypoints at 1 frame per second (decoded in the same pass)")
    contact_sheets: int = Field(default=setting(STAGE, "contact_sheets", 2),
                                description="contact sheets of this many kept and dropped clips in the metadata")


DETECTION_COLUMNS = ["clip_id", "t", "presence_sample", "pose_sample", "person", "score", "box",
                     "keypoints", "keypoint_scores", "frame_width", "frame_height"]


@multi_asset(
    partitions_def=source_shards,
    group_name="accumulation",
    code_version=stage_code_version(STAGE, HumanPresenceConfig),
    backfill_policy=BACKFILL_POLICY,
    op_tags=k8s_op_tags("pose"),  # pod resources under the k8s_job_executor; ignored locally
    outs={
        "human_presence": AssetOut(io_manager_key="tables", description=(
            "Clips whose 16 uniformly sampled frames all show 1–5 people covering ≥ 10 % of the frame.")),
        "person_detections": AssetOut(io_manager_key="tables", description=(
            "Every sampled instant's people (box, 17 keypoints, scores; normalized by frame size).")),
    },
)
def human_presence(context: AssetExecutionContext, config: HumanPresenceConfig, clips, pose: PoseResource,
                   storage: StorageResource, warehouse: WarehouseResource):
    keys = list(context.partition_keys)
    by_partition = {key: list(_human_presence(PartitionScope(context, key) if len(keys) > 1 else context, config,
                                              clips[key] if isinstance(clips, PartitionTables) else clips,
                                              pose, storage, warehouse))
                    for key in keys}
    for index, name in enumerate(("human_presence", "person_detections")):
        outputs = {key: produced[index] for key, produced in by_partition.items()}
        if len(keys) == 1:
            yield outputs[keys[0]]
        else:
            yield Output(PartitionTables({k: o.value for k, o in outputs.items()}), output_name=name,
                         metadata=merge_metadata({k: o.metadata for k, o in outputs.items()}))


def _human_presence(context: AssetExecutionContext, config: HumanPresenceConfig, clips: pd.DataFrame,
                   pose: PoseResource, storage: StorageResource, warehouse: WarehouseResource):
    estimator = pose.estimator()
    context.log.info(f"people on {len(clips)} clips with {pose.describe()}")
    decisions, kept_rows, detections, decoded, sheets = [], [], [], 0, {}
    for clip in clips.itertuples(index=False):
        try:
            sample = sample_clip_people(clip.local_path, clip.start_s, clip.end_s, estimator,
                                        presence_samples=config.samples, pose_fps=config.pose_fps,
                                        keep_images=True)
        except Exception as exc:  # one undecodable clip never sinks the partition
            decisions.append(error(clip.clip_id, f"sampling frames: {type(exc).__name__}: {exc}",
                                   item_kind="clip", parent_id=clip.video_id))
            continue
        decoded += sample.frames_decoded
        at = sample.presence_index
        decision = presence_decision(
            clip.clip_id, [boxes_of(sample.people[i]) for i in at], [scores_of(sample.people[i]) for i in at],
            sample.width, sample.height, min_people=config.min_people, max_people=config.max_people,
            min_coverage=config.min_coverage, min_person_score=config.min_person_score,
            coverage_mode=config.coverage_mode, timestamps=[sample.times[i] for i in at], parent_id=clip.video_id)
        decisions.append(decision)
        detections += _detection_rows(clip.clip_id, sample)
        shown = sum(1 for name in sheets if name.startswith(decision.verdict))
        if shown < config.contact_sheets:
            sheets[f"{decision.verdict} {clip.clip_id}"] = _presence_sheet(clip.clip_id, decision, sample)
        if decision.verdict == "kept":
            detail = decision.detail
            kept_rows.append({**clip._asdict(), "people_min": min(detail["people_per_frame"]),
                              "people_max": max(detail["people_per_frame"]),
                              "coverage_min": min(detail["coverage_per_frame"]),
                              "pose_times": [float(sample.times[i]) for i in sample.pose_index]})
    table = pd.DataFrame(kept_rows, columns=[*clips.columns, "people_min", "people_max", "coverage_min",
                                             "pose_times"])
    detections_table = pd.DataFrame(detections, columns=DETECTION_COLUMNS)
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(rows=len(table), frames_decoded=decoded, pose_backend=pose.describe(),
                    preview=preview(table, ["clip_id", "people_min", "people_max", "coverage_min"]))
    metadata.update(png_metadata(storage, STAGE, context.partition_key, sheets))
    yield Output(table, output_name="human_presence", metadata=metadata)
    yield Output(detections_table, output_name="person_detections",
                 metadata={"rows": len(detections_table), "clips": int(detections_table["clip_id"].nunique())})


def _detection_rows(clip_id: str, sample) -> list[dict]:
    presence, pose_at = set(sample.presence_index), set(sample.pose_index)
    scale = np.array([sample.width, sample.height], dtype=np.float64)
    rows = []
    for i, (t, people) in enumerate(zip(sample.times, sample.people)):
        for k, person in enumerate(people):
            rows.append({
                "clip_id": clip_id, "t": float(t), "presence_sample": i in presence, "pose_sample": i in pose_at,
                "person": k, "score": float(person.score),
                "box": (np.asarray(person.box, dtype=np.float64).reshape(2, 2) / scale).reshape(-1).round(6).tolist(),
                "keypoints": (np.asarray(person.keypoints, dtype=np.float64) / scale).reshape(-1).round(6).tolist(),
                "keypoint_scores": np.asarray(person.keypoint_scores, dtype=np.float64).round(4).tolist(),
                "frame_width": sample.width, "frame_height": sample.height,
            })
    return rows



def _presence_sheet(clip_id: str, decision, sample) -> bytes:
    at = sample.presence_index
    detail = decision.detail
    caption = (f"{clip_id}  {decision.verdict.upper()}  {decision.reason}  "
               f"people/frame={detail['people_per_frame']}")
    labels = [f"{sample.times[i]:.1f}s n={n} cov={c:.2f}"
              for i, n, c in zip(at, detail["people_per_frame"], detail["coverage_per_frame"])]
    return contact_sheet([sample.images[i] for i in at], [sample.people[i] for i in at], caption, labels=labels,
                         columns=8, tile_width=160)
