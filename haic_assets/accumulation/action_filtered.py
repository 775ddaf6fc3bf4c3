"""action_filtered — the filtered set: keypoint motion (L1 > 0.085) and camera motion (affine
residual > 0.0016) on the pose tracklets; the kept clips are cut to files with a manifest."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from haic_core.decisions import error
from haic_core.accumulation.motion import MIN_KEYPOINT_SCORE, MIN_L1, MIN_RESIDUAL, MIN_TRACK_PAIRS, MIN_VALID_KEYPOINTS, \
    measure_clip, motion_decision
from haic_core.accumulation.tracklets import Track
from haic_resources.video.clip_cut import DEFAULT_CRF, ClipCutError, cut_clip
from haic_resources.pose.clip_people import sample_clip_people
from haic_resources.pose.contact_sheet import contact_sheet
from haic_resources.pose.estimator import Person
from haic_resources.pose.resource import PoseResource
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.platform.ledger import preview, record_decisions
from haic_assets.platform.deployment import k8s_op_tags
from haic_assets.platform.partition_runs import BACKFILL_POLICY, each_partition
from haic_assets.platform.partitions import source_shards
from haic_assets.accumulation.pose_tracks import TRACK_COLUMNS
from haic_assets.platform.previews import png_metadata
from haic_assets.platform.settings import setting, stage_code_version

STAGE = "action_filtered"


class ActionFilterConfig(Config):
    motion_l1_min: float = Field(default=setting(STAGE, "motion_l1_min", MIN_L1),
                                 description="paper: keypoint L1 between adjacent 1 fps samples > 0.085")
    affine_residual_min: float = Field(default=setting(STAGE, "affine_residual_min", MIN_RESIDUAL),
                                       description="paper: affine-fit residual > 0.0016 (else camera motion only)")
    pair_aggregate: str = Field(default=setting(STAGE, "pair_aggregate", "min"),
                                description="over a tracklet's adjacent pairs: min (the paper's 'all pairs') or mean")
    track_aggregate: str = Field(default=setting(STAGE, "track_aggregate", "any"),
                                 description="over a clip's tracklets: any (one moving person suffices) or all")
    residual_track_aggregate: str = Field(default=setting(STAGE, "residual_track_aggregate", "mean"))
    min_keypoint_score: float = Field(default=setting(STAGE, "min_keypoint_score", MIN_KEYPOINT_SCORE),
                                      description="keypoints below this score in either frame of a pair are left out")
    min_valid_keypoints: int = Field(default=setting(STAGE, "min_valid_keypoints", MIN_VALID_KEYPOINTS))
    min_track_pairs: int = Field(default=setting(STAGE, "min_track_pairs", MIN_TRACK_PAIRS))
    crf: int = Field(default=setting(STAGE, "crf", DEFAULT_CRF), description="x264 quality of the cut clips")
    contact_sheets: int = Field(default=setting(STAGE, "contact_sheets", 2),
                                description="contact sheets of this many kept and dropped clips in the metadata")


FILTERED_COLUMNS = ["clip_id", "video_id", "start_s", "end_s", "length_s", "fps", "width", "height", "description",
                    "keypoint_l1", "affine_residual", "clip_key", "clip_path", "clip_bytes"]


@asset(
    partitions_def=source_shards,
    io_manager_key="tables",
    group_name="accumulation",
    code_version=stage_code_version(STAGE, ActionFilterConfig),
    description="The filtered set: clips whose people move (keypoint L1) and not only as a rigid whole "
                "(affine residual); cut to MP4 files in the media store, with a manifest.",
    backfill_policy=BACKFILL_POLICY,
    op_tags=k8s_op_tags("decode"),  # pod resources under the k8s_job_executor; ignored locally
)
def action_filtered(context: AssetExecutionContext, config: ActionFilterConfig, human_presence, pose_tracks,
                    pose: PoseResource, storage: StorageResource, warehouse: WarehouseResource) -> Output:
    return each_partition(context, _action_filtered, inputs=("human_presence", "pose_tracks"), config=config,
                          human_presence=human_presence, pose_tracks=pose_tracks, pose=pose, storage=storage,
                          warehouse=warehouse)


def _action_filtered(context: AssetExecutionContext, config: ActionFilterConfig, human_presence: pd.DataFrame,
                    pose_tracks: pd.DataFrame, pose: PoseResource, storage: StorageResource,
                    warehouse: WarehouseResource) -> Output[pd.DataFrame]:
    tracks_by_clip = dict(tuple(pose_tracks.groupby("clip_id", sort=False)))
    media, clips_dir = storage.media(), storage.layout.media / "clips"
    decisions, rows, measured = [], [], {}
    for clip in human_presence.itertuples(index=False):
        motion = measure_clip(_tracks(tracks_by_clip.get(clip.clip_id)), config.pair_aggregate, config.track_aggregate,
                              config.residual_track_aggregate, config.min_keypoint_score,
                              config.min_valid_keypoints, config.min_track_pairs)
        decision = motion_decision(clip.clip_id, motion, config.motion_l1_min, config.affine_residual_min,
                                   parent_id=clip.video_id)
        measured[clip.clip_id] = decision
        if decision.verdict == "kept":
            key = f"clips/{clip.clip_id}.mp4"
            try:
                path, size = _cut_once(clip, clips_dir, config.crf)
            except ClipCutError as exc:
                decisions.append(error(clip.clip_id, f"cutting the clip: {exc.reason}", item_kind="clip",
                                       parent_id=clip.video_id, detail=decision.detail))
                continue
            if storage.media_uri and media.size(key) != size:
                media.put_file(key, path)
            rows.append({**{c: getattr(clip, c) for c in FILTERED_COLUMNS[:9]},
                         "keypoint_l1": motion.l1, "affine_residual": motion.residual, "clip_key": key,
                         "clip_path": str(path), "clip_bytes": size})
        decisions.append(decision)
    table = pd.DataFrame(rows, columns=FILTERED_COLUMNS)
    manifest_key = f"manifests/{context.partition_key}.jsonl"
    records = table.drop(columns=["clip_path"]).to_dict(orient="records")
    media.put_bytes(manifest_key, "".join(json.dumps(r, default=float) + "\n" for r in records).encode())
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(rows=len(table), manifest=f"{media.uri}/{manifest_key}",
                    preview=preview(table, ["clip_id", "length_s", "keypoint_l1", "affine_residual"]))
    metadata.update(png_metadata(storage, STAGE, context.partition_key,
                                 _contact_sheets(context, config, human_presence, tracks_by_clip, measured, pose)))
    return Output(table, metadata=metadata)


def _cut_once(clip, clips_dir: Path, crf: int) -> tuple[Path, int]:
    """Cut the clip unless the same window of the same source at the same quality is already cut.

    Re-curation re-runs this stage often (a changed threshold); re-encoding would cost time and,
    worse, could change the bytes that the caption cache is keyed by.
    """
    target = clips_dir / f"{clip.clip_id}.mp4"
    recipe = {"source_bytes": Path(clip.local_path).stat().st_size, "start_s": clip.start_s, "end_s": clip.end_s,
              "crf": crf}
    sidecar = target.with_suffix(".json")
    if target.is_file() and sidecar.is_file() and json.loads(sidecar.read_text()) == recipe:
        return target, target.stat().st_size
    cut = cut_clip(clip.local_path, target, clip.start_s, clip.end_s, crf=crf)
    sidecar.write_text(json.dumps(recipe))
    return cut.path, cut.size_bytes


def _tracks(rows: pd.DataFrame | None) -> list[Track]:
    if rows is None or rows.empty:
        return []
    tracks = []
    for track_id, group in rows.groupby("track_id"):
        keypoints = np.array(group["keypoints"].map(lambda k: np.asarray(list(k), dtype=np.float64).tolist()).tolist())
        keypoints = keypoints.reshape(-1, 17, 3)
        tracks.append(Track(track_id=int(track_id),
                            frame_indices=group["sample"].to_numpy(dtype=np.int64),  # 1 fps sample positions
                            boxes=np.array(group["box"].tolist(), dtype=np.float64).reshape(-1, 4),
                            keypoints=keypoints[:, :, :2], keypoint_scores=keypoints[:, :, 2]))
    return tracks


def _contact_sheets(context, config, human_presence, tracks_by_clip, decisions, pose: PoseResource) -> dict[str, bytes]:
    """Sheets of the 1 fps samples with tracked skeletons, for a few kept and a few dropped clips."""
    chosen = ([c for c, d in decisions.items() if d.verdict == "kept"][: config.contact_sheets]
              + [c for c, d in decisions.items() if d.verdict != "kept"][: config.contact_sheets])
    clips = human_presence.set_index("clip_id")
    sheets = {}
    for clip_id in chosen:
        clip, decision = clips.loc[clip_id], decisions[clip_id]
        rows = tracks_by_clip.get(clip_id, pd.DataFrame(columns=TRACK_COLUMNS))
        times = list(clip.pose_times)  # every 1 fps sample, the empty ones too
        try:
            sample = sample_clip_people(clip.local_path, clip.start_s, clip.end_s, pose.estimator(), only=times,
                                        keep_images=True)
        except Exception as exc:  # a preview must never fail the stage
            context.log.warning(f"no contact sheet for {clip_id}: {exc}")
            continue
        scale = np.array([sample.width, sample.height])
        people, ids = [], []
        for t in times:
            at_t = rows[rows["t"] == t]
            people.append([Person(box=(np.asarray(r.box).reshape(2, 2) * scale).reshape(-1),
                                  score=float(r.score),
                                  keypoints=np.asarray(list(r.keypoints), dtype=np.float64)[:, :2] * scale,
                                  keypoint_scores=np.asarray(list(r.keypoints), dtype=np.float64)[:, 2])
                           for r in at_t.itertuples(index=False)])
            ids.append([int(i) for i in at_t["track_id"]])
        d = decision.detail
        caption = (f"{clip_id}  {decision.verdict.upper()}  L1={d.get('keypoint_l1')} (>{config.motion_l1_min})  "
                   f"residual={d.get('affine_residual')} (>{config.affine_residual_min})")
        sheets[f"{decision.verdict} {clip_id}"] = contact_sheet(
            sample.images, people, caption, labels=[f"{t:.1f} s" for t in times], track_ids_per_frame=ids,
            columns=5, tile_width=160)
    return sheets

