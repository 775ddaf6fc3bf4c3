"""metadata_filtered: resolution and the verb test (spaCy POS tags) on the description."""

import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.accumulation.metadata_filter import ResolutionRule, filter_metadata
from haic_assets.accumulation.raw_metadata import RAW_METADATA_COLUMNS
from haic_platform.stage import StageContext, StageResult, partitioned_stage

FILTERED_METADATA_COLUMNS = {**RAW_METADATA_COLUMNS, "resolution_deferred": "the metadata gives no resolution: the "
                                                                             "videos stage applies the rule to the probe"}


class MetadataFilterConfig(Config):
    min_short_side_px: int = Field(default=240, ge=0, description="drop videos whose shorter side is below this (the "
                                                            "paper gives no value; 240 keeps WebVid's 596x336 previews)")
    min_long_side_px: int = Field(default=320, ge=0, description="drop videos whose longer side is below this")


@partitioned_stage("metadata_filtered", MetadataFilterConfig, ins=("raw_metadata",), resources=("spacy_nlp",),
                   column_docs=FILTERED_METADATA_COLUMNS)
def metadata_filtered(stage: StageContext, config: MetadataFilterConfig, raw_metadata: pd.DataFrame) -> StageResult:
    """Videos whose resolution is high enough (or unknown: deferred to the probe) and whose description
    contains a verb."""
    rule = ResolutionRule(config.min_short_side_px, config.min_long_side_px)
    stage.log.info(f"metadata_filtered [{stage.partition_key}]: {len(raw_metadata)} rows to filter")
    tagger = _Counted(stage.spacy_nlp.tagger(), stage.progress("verb test (distinct descriptions)"))
    table, decisions = filter_metadata(raw_metadata, tagger, rule, batch_size=stage.spacy_nlp.batch_size)
    return StageResult(table, decisions, metadata={"deferred_resolution": int(table["resolution_deferred"].sum())},
                       preview=["video_id", "description", "width", "height", "resolution_deferred"])


class _Counted:
    """The spaCy tagger, saying how many distinct descriptions it has tagged (the stage's long part:
    about 0.5 ms each on one core, bench/bench_metadata_filter.py), so a 200,000-row shard shows its
    progress instead of minutes of silence."""

    def __init__(self, nlp, progress):
        self._nlp, self._progress = nlp, progress

    def pipe(self, texts, batch_size: int = 512):
        texts = list(texts)
        for done, doc in enumerate(self._nlp.pipe(texts, batch_size=batch_size), start=1):
            self._progress(done, len(texts))
            yield doc
