"""bench_captions: one batch of human-written HAICBench captions, checked against the standardized format.

A batch is a folder `<batch>/` of the annotations store (HAIC_HOME/annotations, or
HAIC_ANNOTATIONS_URI) holding `captions.jsonl` or `captions.csv` (clip_id, caption, writer,
checkers; optional video_id). The folder name is the partition key. Each caption must name a clip
of the batch's annotation task (annotation_tasks) and carry its sign-offs (the paper: 1 writer and
3 checkers); any other clip id is an error row, missing sign-offs a dropped row with the counts.
An optional `clip_checks.csv` (clip_id, checker, decision keep|reject, note) holds the manual check:
a rejected clip's caption is dropped, and a check of a clip outside the task is an error row.
"""

import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.haic_train.caption_format import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS
from haic_core.haicbench.annotation_tasks import CLIP_CHECKS_FILE, PAPER_CHECKERS, PAPER_WRITERS, manual_check
from haic_core.haicbench.annotations import (CAPTION_FILES, bench_caption_table, caption_file, files_by_batch,
                                             read_caption_export)
from haic_assets.platform.partitions import annotation_batches
from haic_platform.settings import not_below
from haic_platform.stage import StageContext, StageFailure, StageResult, partitioned_stage

BENCH_CAPTION_DOCS = {
    "clip_id": "the clip (action_filtered.clip_id)",
    "video_id": "the video the clip was cut from",
    "video_id_source": "where video_id came from: the annotation task, or the captions file",
    "caption": "the human-written caption in the standardized format",
    "writer": "who wrote it (1 writer per caption in the paper)",
    "checkers": "who signed it off (3 checkers in the paper)",
    "subject_count": "the subjects the caption declares (no interaction QA for one)",
}


class BenchCaptionConfig(Config):
    min_words: int = Field(default=DEFAULT_MIN_WORDS, ge=0)
    max_words: int = Field(default=DEFAULT_MAX_WORDS, ge=0, validate_default=True)
    writers_required: int = Field(default=PAPER_WRITERS, ge=1, description="the paper: 1 writer per caption")
    checkers_required: int = Field(default=PAPER_CHECKERS, ge=0,
                                   description="the paper: 3 checkers per caption, other than its writer")

    words_range = not_below("min_words", "max_words")


@partitioned_stage("bench_captions", BenchCaptionConfig, partitions=annotation_batches, ins=("annotation_tasks",),
                   column_docs=BENCH_CAPTION_DOCS)
def bench_captions(stage: StageContext, config: BenchCaptionConfig, annotation_tasks: pd.DataFrame) -> StageResult:
    """Human-written HAICBench captions of one annotation batch (annotations/<batch>/captions.{jsonl,csv})
    of clips of its annotation task, with their sign-offs, that pass the standardized-format check; the
    rest are in the ledger with the reason."""
    batch, annotations = stage.partition_key, stage.storage.annotations()
    files = files_by_batch(annotations.list(f"{batch}/")).get(batch, set())
    name = caption_file(files)
    if name is None:
        raise StageFailure(f"annotation batch {batch!r} has no {' or '.join(CAPTION_FILES)} in "
                           f"{annotations.uri}/{batch}")
    task_clips = dict(zip(annotation_tasks["clip_id"], annotation_tasks["video_id"]))
    rejected, check_errors = {}, []
    if CLIP_CHECKS_FILE in files:
        try:
            rejected, check_errors = manual_check(annotations.get_bytes(f"{batch}/{CLIP_CHECKS_FILE}"), task_clips,
                                                  batch)
        except ValueError as exc:
            raise StageFailure(f"{annotations.uri}/{batch}/{CLIP_CHECKS_FILE}: {exc}") from exc
    try:
        export = read_caption_export(name, annotations.get_bytes(f"{batch}/{name}"))
        table, decisions = bench_caption_table(
            export, batch=batch, min_words=config.min_words, max_words=config.max_words, task_clips=task_clips,
            writers_required=config.writers_required, checkers_required=config.checkers_required, rejected=rejected)
    except ValueError as exc:  # an unreadable export, or one without clip_id or caption
        raise StageFailure(f"{annotations.uri}/{batch}/{name}: {exc}") from exc
    decided = {d.item_id for d in decisions}  # one ledger row per item: a caption's row says it already
    decisions += [d for d in check_errors if d.item_id not in decided]
    return StageResult(table, decisions, preview=["clip_id", "video_id", "subject_count", "writer", "caption"])
