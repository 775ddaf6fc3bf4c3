"""action_filtered — the filtered set: keypoint motion (L1 > 0.085) and camera motion (affine
residual > 0.0016) on the pose tracklets; the kept clips are cut to files with a manifest."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.decisions import error, teaching_examples
from haic_core.haic_train.export import clip_file_name
from haic_core.accumulation.motion import (JOINTS_IN_BOX, MIN_KEYPOINT_SCORE, MIN_L1, MIN_RESIDUAL, MIN_TRACK_PAIRS,
                                           MIN_VALID_KEYPOINTS, NUM_KEYPOINTS, measure_clip, motion_decision)
from haic_core.accumulation.pose_rows import TRACK_COLUMNS, tracks_from_rows
from haic_resources.pose.clip_people import PeopleTask, sample_people
from haic_resources.pose.contact_sheet import contact_sheet
from haic_resources.pose.estimator import Person
from haic_resources.storage.files import atomic_write_bytes
from haic_resources.video.clip_cut import CLIP_FILE_MODE, DEFAULT_CRF, ClipCutError, cut_clip, frame_size
from haic_resources.video.isolation import run_isolated
from haic_assets.accumulation.clips import CLIP_COLUMNS
from haic_platform.staged_media import DEFAULT_CACHE_MAX_BYTES, SHARED_SETTINGS, release_sources, restage
from haic_platform.stage import StageContext, StageResult, partitioned_stage
from haic_platform.stage_checks import YIELD_BAND


class ActionFilterConfig(Config):
    motion_l1_min: float = Field(default=MIN_L1, ge=0.0, description="paper: keypoint L1 between adjacent 1 fps samples > 0.085")
    affine_residual_min: float = Field(default=MIN_RESIDUAL, ge=0.0,
                                       description="paper: affine-fit residual > 0.0016 (else camera motion only)")
    pair_aggregate: str = Field(default="min", description="over a tracklet's adjacent pairs: min (the paper's "
                                                           "'all pairs') or mean")
    track_aggregate: str = Field(default="any", description="over a clip's tracklets: any (one moving person "
                                                            "suffices) or all")
    residual_track_aggregate: str = Field(default="mean")
    min_keypoint_score: float = Field(default=MIN_KEYPOINT_SCORE, ge=0.0, le=1.0,
                                      description="keypoints below this score in either frame of a pair are left out")
    min_valid_keypoints: int = Field(default=MIN_VALID_KEYPOINTS, ge=0, le=NUM_KEYPOINTS,
                                     description="a pair with fewer valid keypoints (of 17) is skipped")
    min_track_pairs: int = Field(default=MIN_TRACK_PAIRS, ge=0)
    joints_in_box: bool = Field(default=JOINTS_IN_BOX,
                                description="a keypoint counts only inside its person's box in both samples: a "
                                            "joint hidden behind a table, drawn at the table's edge, is not motion")
    crf: int = Field(default=DEFAULT_CRF, ge=0, le=51, description="x264 quality of the cut clips (0-51)")
    kept_contact_sheets: int = Field(default=8, ge=0, description="contact sheets of this many kept clips (nearest "
                                                                  "the thresholds first): enough to see what the "
                                                                  "filter keeps")
    contact_sheets: int = Field(default=2, ge=0, description="contact sheets, for each drop reason code, of this many "
                                                             "drops nearest the threshold")
    sheet_timeout_s: float = Field(default=300.0, gt=0.0, description="hard limit for decoding one contact sheet's frames")
    cache_max_bytes: int = Field(default=DEFAULT_CACHE_MAX_BYTES, gt=0, description="setting shared with videos")
    mirror_sources: bool = Field(default=False, description="setting shared with videos")


FILTERED_COLUMNS = {
    **{name: CLIP_COLUMNS[name] for name in ("clip_id", "video_id", "start_s", "end_s", "length_s", "fps")},
    "width": "the cut clip's width in pixels",
    "height": "the cut clip's height in pixels",
    "description": CLIP_COLUMNS["description"],
    "keypoint_l1": "the clip's keypoint L1 between adjacent 1-per-second frames (kept: > 0.085)",
    "affine_residual": "the clip's residual of the affine fit between adjacent frames (kept: > 0.0016)",
    "clip_key": "key of the cut clip (MP4) in the media store",
    "clip_path": "the cut clip's local file",
    "clip_bytes": "size of the cut clip",
}


@partitioned_stage("action_filtered", ActionFilterConfig, ins=("human_presence", "pose_tracks"), kind="decode",
                   resources=("pose",), settings_from=SHARED_SETTINGS, columns=FILTERED_COLUMNS, column_docs=FILTERED_COLUMNS,
                   checks=(YIELD_BAND,))
def action_filtered(stage: StageContext, config: ActionFilterConfig, human_presence: pd.DataFrame,
                    pose_tracks: pd.DataFrame) -> StageResult:
    """The filtered set: clips whose people move (keypoint L1) and not only as a rigid whole (affine
    residual); cut to MP4 files in the media store, with a manifest."""
    tracks_by_clip = dict(tuple(pose_tracks.groupby("clip_id", sort=False)))
    media, clips_dir = stage.storage.media(), stage.storage.layout.media / "clips"
    lost = restage(stage, human_presence, config.cache_max_bytes)
    decisions, rows, measured, motions = [], [], {}, {}
    for clip in human_presence.itertuples(index=False):
        motion = measure_clip(tracks_from_rows(tracks_by_clip.get(clip.clip_id)), config.pair_aggregate,
                              config.track_aggregate, config.residual_track_aggregate, config.min_keypoint_score,
                              config.min_valid_keypoints, config.min_track_pairs, config.joints_in_box)
        motions[clip.clip_id] = motion
        measured[clip.clip_id] = motion_decision(clip.clip_id, motion, config.motion_l1_min,
                                                 config.affine_residual_min, parent_id=clip.video_id)
    for clip in human_presence.itertuples(index=False):
        decision, motion = measured[clip.clip_id], motions[clip.clip_id]
        if decision.verdict == "kept" and clip.video_id in lost:
            decisions.append(error(clip.clip_id, f"cutting the clip: {lost[clip.video_id]}", item_kind="clip",
                                   parent_id=clip.video_id, detail=decision.detail))
            continue
        if decision.verdict == "kept":
            key = f"clips/{clip_file_name(clip.clip_id)}"
            try:
                path, size = _cut_once(clip, clips_dir, config.crf)
            except ClipCutError as exc:
                decisions.append(error(clip.clip_id, f"cutting the clip: {exc.reason}", item_kind="clip",
                                       parent_id=clip.video_id, detail=decision.detail))
                continue
            if stage.storage.media_uri and media.size(key) != size:
                media.put_file(key, path)
            width, height = frame_size(path)  # upright: a rotated source's sides are swapped in its clip
            rows.append({**{c: getattr(clip, c) for c in list(FILTERED_COLUMNS)[:9]}, "width": width, "height": height,
                         "keypoint_l1": motion.l1, "affine_residual": motion.residual, "clip_key": key,
                         "clip_path": str(path), "clip_bytes": size})
        decisions.append(decision)
    table = pd.DataFrame(rows, columns=list(FILTERED_COLUMNS))
    manifest_key = f"manifests/{stage.partition_key}.jsonl"
    records = table.drop(columns=["clip_path"]).to_dict(orient="records")
    media.put_bytes(manifest_key, "".join(json.dumps(r, default=float) + "\n" for r in records).encode())
    sheets = _contact_sheets(stage, config, human_presence[~human_presence["video_id"].isin(lost)], tracks_by_clip,
                             measured)
    release_sources(stage, human_presence["local_path"], config.mirror_sources)  # the last decode step
    return StageResult(table, decisions, metadata={"manifest": f"{media.uri}/{manifest_key}"},
                       preview=["clip_id", "length_s", "keypoint_l1", "affine_residual"], sheets=sheets)


def _cut_once(clip, clips_dir: Path, crf: int) -> tuple[Path, int]:
    """Cut the clip unless the same window of the same source at the same quality is already cut.

    Re-curation re-runs this stage often (a changed threshold); re-encoding would cost time and,
    worse, could change the bytes that the caption cache is keyed by.
    """
    target = clips_dir / clip_file_name(clip.clip_id)  # never a path chosen by a metadata id
    recipe = {"source_bytes": Path(clip.local_path).stat().st_size, "start_s": clip.start_s, "end_s": clip.end_s,
              "crf": crf}
    sidecar = target.with_suffix(".json")
    if target.is_file() and sidecar.is_file() and json.loads(sidecar.read_text()) == recipe:
        return target, target.stat().st_size
    cut = cut_clip(clip.local_path, target, clip.start_s, clip.end_s, crf=crf)
    atomic_write_bytes(sidecar, json.dumps(recipe).encode(), mode=CLIP_FILE_MODE)
    return cut.path, cut.size_bytes


def _contact_sheets(stage: StageContext, config, human_presence, tracks_by_clip, decisions) -> dict[str, bytes]:
    """Sheets of the 1 fps samples with tracked skeletons: kept clips, and per drop code the clips
    nearest the threshold."""
    clips = human_presence.set_index("clip_id")
    chosen = [d.item_id for d in teaching_examples([d for c, d in decisions.items() if c in clips.index],
                                                   config.contact_sheets, kept=config.kept_contact_sheets)]
    tasks = [PeopleTask(clip_id=c, path=clips.loc[c].local_path, start_s=clips.loc[c].start_s,
                        end_s=clips.loc[c].end_s, pose=stage.pose.settings(), keep_images=True,
                        only=tuple(clips.loc[c].pose_times)) for c in chosen]
    sheets = {}
    for task, result in zip(tasks, run_isolated(sample_people, tasks, workers=1, timeout_s=config.sheet_timeout_s,
                                                reuse_workers=True)):
        if not result.ok:  # a preview must never fail the stage
            stage.log.warning(f"no contact sheet for {task.clip_id}: {result.error}")
            continue
        sample, decision = result.value, decisions[task.clip_id]
        rows = tracks_by_clip.get(task.clip_id, pd.DataFrame(columns=TRACK_COLUMNS))
        people, ids = _tracked_people(rows, list(task.only), np.array([sample.width, sample.height]))
        d = decision.detail
        caption = (f"{task.clip_id}  {decision.verdict.upper()} {decision.code}  "
                   f"L1={d.get('keypoint_l1')} (>{config.motion_l1_min})  "
                   f"residual={d.get('affine_residual')} (>{config.affine_residual_min})")
        sheets[task.clip_id] = contact_sheet(
            sample.images, people, caption, labels=[f"{t:.1f} s" for t in task.only], track_ids_per_frame=ids,
            columns=5, tile_width=160)
    return sheets


def _tracked_people(rows: pd.DataFrame, times: list[float], scale: np.ndarray):
    """Per sample time, the tracked people in pixels (for drawing) and their track ids."""
    people, ids = [], []
    for t in times:
        at_t = rows[rows["t"] == t]
        keypoints = [np.asarray(list(r.keypoints), dtype=np.float64) for r in at_t.itertuples(index=False)]
        people.append([Person(box=(np.asarray(r.box).reshape(2, 2) * scale).reshape(-1), score=float(r.score),
                              keypoints=k[:, :2] * scale, keypoint_scores=k[:, 2])
                       for r, k in zip(at_t.itertuples(index=False), keypoints)])
        ids.append([int(i) for i in at_t["track_id"]])
    return people, ids
