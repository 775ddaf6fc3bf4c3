"""bench_captions: one batch of human-written HAICBench captions, checked against the standardized format.

A batch is a folder `<batch>/` of the annotations store (HAIC_HOME/annotations, or
HAIC_ANNOTATIONS_URI) holding `captions.jsonl` or `captions.csv` (clip_id, caption, writer,
checkers; optional video_id). The folder name is the partition key.
"""

from dagster import Config
from pydantic import Field

from haic_core.haic_train.caption_format import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS
from haic_core.haicbench.annotations import (CAPTION_FILES, bench_caption_table, caption_file, files_by_batch,
                                             read_caption_export)
from haic_assets.platform.partitions import annotation_batches
from haic_assets.platform.stage import StageContext, StageFailure, StageResult, partitioned_stage


class BenchCaptionConfig(Config):
    min_words: int = Field(default=DEFAULT_MIN_WORDS)
    max_words: int = Field(default=DEFAULT_MAX_WORDS)


@partitioned_stage("bench_captions", BenchCaptionConfig, partitions=annotation_batches)
def bench_captions(stage: StageContext, config: BenchCaptionConfig) -> StageResult:
    """Human-written HAICBench captions of one annotation batch (annotations/<batch>/captions.{jsonl,csv})
    that pass the standardized-format check; the rest are in the ledger with the reason."""
    batch, annotations = stage.partition_key, stage.storage.annotations()
    name = caption_file(files_by_batch(annotations.list(f"{batch}/")).get(batch, set()))
    if name is None:
        raise StageFailure(f"annotation batch {batch!r} has no {' or '.join(CAPTION_FILES)} in "
                           f"{annotations.uri}/{batch}")
    try:
        export = read_caption_export(name, annotations.get_bytes(f"{batch}/{name}"))
        table, decisions = bench_caption_table(export, batch=batch, min_words=config.min_words,
                                               max_words=config.max_words)
    except ValueError as exc:  # an unreadable export, or one without clip_id or caption
        raise StageFailure(f"{annotations.uri}/{batch}/{name}: {exc}") from exc
    return StageResult(table, decisions, preview=["clip_id", "video_id", "subject_count", "writer", "caption"])
