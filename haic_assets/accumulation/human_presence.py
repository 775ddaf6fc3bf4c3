"""human_presence: 16 uniformly sampled frames per clip; every one must show 1–5 people covering ≥ 10 %.

One decoding pass per clip also yields the 1 fps frames for pose tracking; their people are
stored in `person_detections`, so pose_tracks never decodes the clip again. Each clip is decoded
(and, per clip, posed) in a killable child process: a clip that hangs the decoder is an error at its
timeout. With the batched backend the children only decode (NVDEC on a GPU) and the models, resident
in this process, take many clips per call (`sample_clips_batched`).
"""

import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.decisions import error, teaching_examples
from haic_core.accumulation.pose_rows import DETECTION_COLUMNS, detection_rows
from haic_core.accumulation.presence import MIN_PERSON_KEYPOINTS, PERSON_KEYPOINT_SCORE, presence_decision
from haic_resources.pose.clip_people import PeopleTask, sample_people
from haic_resources.pose.contact_sheet import contact_sheet
from haic_resources.pose.estimator import boxes_of, keypoint_scores_of, scores_of
from haic_resources.pose.clip_batch import ClipWindow, read_cpu, sample_clips_batched
from haic_resources.video import gpu_split
from haic_resources.video.isolation import IsolatedResult, run_isolated
from haic_assets.accumulation.clips import CLIP_COLUMNS
from haic_platform.staged_media import DEFAULT_CACHE_MAX_BYTES, SHARED_SETTINGS, release_sources, restage
from haic_assets.platform.resources import pose_version
from haic_platform.settings import not_below
from haic_platform.stage import StageContext, StageResult, partitioned_stage


class HumanPresenceConfig(Config):
    samples: int = Field(default=16, ge=1, description="paper: 16 uniformly sampled frames")
    min_people: int = Field(default=1, ge=0, description="paper: at least 1 person per frame")
    max_people: int = Field(default=5, ge=0, validate_default=True, description="paper: at most 5 people per frame")
    min_coverage: float = Field(default=0.10, ge=0.0, description="paper: people's boxes cover at least 10 % of the frame")
    coverage_mode: str = Field(default="union", description="union of the people's clipped boxes (our reading; "
                                                            "never above 1) or sum (overlaps count twice); both are "
                                                            "recorded")
    min_person_score: float = Field(default=0.2, ge=0.0, le=1.0, description="a detection counts as a person from this score")
    min_person_keypoints: int = Field(default=MIN_PERSON_KEYPOINTS, ge=0, le=17,
                                      description="and with this many confident keypoints (a body: a third of it, "
                                                  "what the motion filters need); fewer is recorded as not a "
                                                  "person (0 = score alone)")
    person_keypoint_score: float = Field(default=PERSON_KEYPOINT_SCORE, ge=0.0, le=1.0,
                                         description="a keypoint is confident from this score (the motion filters' cut)")
    pose_fps: float = Field(default=1.0, gt=0.0, description="paper: keypoints at 1 frame per second (decoded in the same "
                                                     "pass; setting shared with pose_tracks)")
    kept_contact_sheets: int = Field(default=8, ge=0, description="contact sheets of this many kept clips (nearest the "
                                                                  "threshold first): enough to see what the filter keeps")
    contact_sheets: int = Field(default=2, ge=0, description="contact sheets, for each drop reason code, of this many "
                                                             "drops nearest the threshold")
    workers: int = Field(default=1, ge=1, description="clips decoded and posed at once (each in its own process); "
                                                "batched backend: decoder processes ahead of the shared models")
    timeout_s: float = Field(default=300.0, gt=0.0, description="hard limit for decoding + posing one clip (the child is killed)")
    cache_max_bytes: int = Field(default=DEFAULT_CACHE_MAX_BYTES, gt=0, description="setting shared with videos")
    mirror_sources: bool = Field(default=False, description="setting shared with videos")

    people_range = not_below("min_people", "max_people")


# The sampled frames are kept only for contact sheets (160 px tiles): kept small, a partition's clips do not
# hold every frame at the model's input size in memory.
SHEET_IMAGE_LONG_SIDE = 320

PRESENCE_COLUMNS = {
    **CLIP_COLUMNS,
    "people_min": "fewest people on one of the 16 sampled frames (kept: 1 to 5 on every one)",
    "people_max": "most people on one sampled frame",
    "coverage_min": "smallest share of a sampled frame the people's boxes cover (kept: >= 0.10)",
    "pose_times": "the clip's instants, in seconds, at which pose_tracks reads keypoints (1 per second)",
    # person_detections
    "t": "instant of the sampled frame in the clip, seconds",
    "presence_sample": "one of the 16 frames the presence rule counts",
    "pose_sample": "one of the 1-per-second frames pose_tracks links",
    "person": "the person's index on that frame",
    "score": "the detector's confidence in the person",
    "box": "x1, y1, x2, y2 of the person's box, divided by the frame's width and height",
    "keypoints": "17 COCO keypoints as x, y pairs (34 numbers), divided by the frame's width and height",
    "keypoint_scores": "the 17 keypoints' confidences",
    "frame_width": "the sampled frame's width in pixels",
    "frame_height": "the sampled frame's height in pixels",
}

OUTPUTS = {
    "human_presence": "Clips whose 16 uniformly sampled frames all show 1–5 people covering ≥ 10 % of the frame.",
    "person_detections": "Every sampled instant's people (box, 17 keypoints, scores; normalized by frame size).",
}


# version 2: duplicate boxes suppressed (NMS) on every backend; MoveNet stays the default people model.
# version 3: a person needs a body (confident keypoints), boxes without one are recorded; coverage is the union of
# the people's boxes (the sum is recorded beside it); the default people model is the shipped YOLOX-nano detector
# (tiled for crowds) + MoveNet keypoints on each person's crop.
# The configured people model is part of the code version too (pose_version): the default's 2 × 2 tiles for
# crowds, another backend or model file make the partitions stale.
@partitioned_stage("human_presence", HumanPresenceConfig, ins=("clips",), outs=OUTPUTS, kind="gpu",
                   resources=("pose",), settings_from={"pose_fps": "pose_tracks", **SHARED_SETTINGS}, version="3",
                   fingerprint=lambda config: pose_version(), column_docs=PRESENCE_COLUMNS)
def human_presence(stage: StageContext, config: HumanPresenceConfig, clips: pd.DataFrame) -> StageResult:
    pose = stage.pose
    backend = pose.describe()
    stage.log.info(f"people on {len(clips)} clips with {backend}, {config.workers} at a time")
    lost = restage(stage, clips, config.cache_max_bytes)
    all_clips, clips = clips, clips[~clips["video_id"].isin(lost)]
    tasks = [PeopleTask(clip_id=c.clip_id, path=c.local_path, start_s=c.start_s, end_s=c.end_s,
                        presence_samples=config.samples, pose_fps=config.pose_fps, pose=pose.settings(),
                        keep_images=True, image_long_side=SHEET_IMAGE_LONG_SIDE) for c in clips.itertuples(index=False)]
    if pose.backend == "batched":  # many clips per network call; decoders in killable worker processes
        results = _batched_people(pose, tasks, config, stage.progress("people"), str(stage.storage.layout.cache))
    else:
        results = run_isolated(sample_people, tasks, workers=config.workers, timeout_s=config.timeout_s,
                               reuse_workers=True, progress=stage.progress("people"))
    decisions = [error(c.clip_id, f"sampling frames: {lost[c.video_id]}", item_kind="clip", parent_id=c.video_id)
                 for c in all_clips.itertuples(index=False) if c.video_id in lost]
    kept_rows, detections, decoded, samples = [], [], 0, {}
    for clip, result in zip(clips.itertuples(index=False), results):
        if not result.ok:  # one undecodable or hanging clip never sinks the partition
            decisions.append(error(clip.clip_id, f"sampling frames: {result.error}", item_kind="clip",
                                   parent_id=clip.video_id))
            continue
        sample = result.value
        decoded += sample.frames_decoded
        at = sample.presence_index
        decision = presence_decision(
            clip.clip_id, [boxes_of(sample.people[i]) for i in at], [scores_of(sample.people[i]) for i in at],
            sample.width, sample.height, keypoint_scores_per_frame=[keypoint_scores_of(sample.people[i]) for i in at],
            min_people=config.min_people, max_people=config.max_people, min_coverage=config.min_coverage,
            min_person_score=config.min_person_score, min_person_keypoints=config.min_person_keypoints,
            person_keypoint_score=config.person_keypoint_score, coverage_mode=config.coverage_mode,
            timestamps=[sample.times[i] for i in at], parent_id=clip.video_id)
        decisions.append(decision)
        detections += detection_rows(clip.clip_id, sample.times, sample.people, sample.presence_index,
                                     sample.pose_index, sample.width, sample.height)
        samples[clip.clip_id] = sample
        if decision.verdict == "kept":
            detail = decision.detail
            kept_rows.append({**clip._asdict(), "people_min": min(detail["people_per_frame"]),
                              "people_max": max(detail["people_per_frame"]),
                              "coverage_min": min(detail["coverage_per_frame"]),
                              "pose_times": [float(sample.times[i]) for i in sample.pose_index]})
    sheets = {d.item_id: _presence_sheet(d.item_id, d, samples[d.item_id])
              for d in teaching_examples(decisions, config.contact_sheets, kept=config.kept_contact_sheets)}
    table = pd.DataFrame(kept_rows, columns=[*clips.columns, "people_min", "people_max", "coverage_min", "pose_times"])
    release_sources(stage, all_clips.loc[~all_clips["video_id"].isin(set(table["video_id"])), "local_path"],
                    config.mirror_sources)
    detections_table = pd.DataFrame(detections, columns=DETECTION_COLUMNS)
    return StageResult(
        tables={"human_presence": table, "person_detections": detections_table}, decisions=decisions,
        metadata={"frames_decoded": decoded, "pose_backend": backend},
        preview=["clip_id", "people_min", "people_max", "coverage_min"], sheets=sheets,
        output_metadata={"person_detections": {"clips": int(detections_table["clip_id"].nunique())}})


def _batched_people(pose, tasks: list[PeopleTask], config: HumanPresenceConfig, progress,
                    cache_dir: str) -> list[IsolatedResult]:
    """The tasks' `ClipPeople` from the batched backend (`sample_clips_batched`): the models stay in this
    process (on the GPU when there is one) and take many clips per call, `config.workers` decoder
    processes decode ahead on the CPU, each clip killable at its deadline. Not with NVDEC: each process
    would hold a CUDA context of its own, and the GPU time-slices between contexts (H200, bench/GPU_NOTES.md
    run 4: 10 clips/s with 4 to 14 NVDEC processes, the GPU 98 % busy; OpenCV threads alone decoded 21.5).
    With HAIC_VIDEO_DECODER=nvdec the clips stage's single pass left each clip's frames in the frame cache:
    threads take them (and decode on the CPU a clip it left none for)."""
    estimator = pose.estimator()
    windows = [ClipWindow(t.clip_id, t.path, t.start_s, t.end_s) for t in tasks]
    read, processes = read_cpu, config.workers
    if gpu_split.configured_decoder() == "nvdec":
        read, processes = gpu_split.cached_reader(cache_dir), 0
    outcomes = {}
    for outcome in sample_clips_batched(windows, estimator, read, decode_processes=processes,
                                        timeout_s=config.timeout_s, presence_samples=config.samples,
                                        pose_fps=config.pose_fps, keep_images=True):
        outcomes[outcome.clip_id] = outcome
        progress(len(outcomes), len(windows))
    return [IsolatedResult(k, task, outcomes[task.clip_id].people is not None, value=outcomes[task.clip_id].people,
                           error=outcomes[task.clip_id].error) for k, task in enumerate(tasks)]


def _presence_sheet(clip_id: str, decision, sample) -> bytes:
    at = sample.presence_index
    detail = decision.detail
    caption = (f"{clip_id}  {decision.verdict.upper()} {decision.code}  {decision.reason}  "
               f"people/frame={detail['people_per_frame']}")
    labels = [f"{sample.times[i]:.1f}s n={n} cov={c:.2f}" + (f" +{len(nots)} no body" if nots else "")
              for i, n, c, nots in zip(at, detail["people_per_frame"], detail["coverage_per_frame"],
                                       detail["not_people_per_frame"])]
    return contact_sheet([sample.images[i] for i in at], [sample.people[i] for i in at], caption, labels=labels,
                         columns=8, tile_width=160, people_width=sample.width)
