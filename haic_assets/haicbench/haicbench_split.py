"""haicbench_split: the HAICBench test split (412 videos, 2,000 QA, 400 per category) from every batch's
verified QA, exported as JSONL, Parquet, a clip manifest, a card, the clips and an lmms-eval task folder."""

import pandas as pd
from dagster import AllPartitionMapping, AssetIn, Config, MetadataValue
from pydantic import Field

from haic_core.haic_train.export import portable_uri
from haic_core.haicbench.export import (LMMS_EVAL_FOLDER, SPLIT_JSONL, TASK_NAME, benchmark_records,
                                        haicbench_release_files)
from haic_core.haicbench.qa import CATEGORIES, QA
from haic_core.haicbench.qa_shuffle import answer_positions_markdown, with_balanced_answer_positions
from haic_core.haicbench.split import (PAPER_CATEGORY_QUOTA, PAPER_N_QA, PAPER_N_VIDEOS, InfeasibleSplitError,
                                       SplitParams, select_haicbench_split, split_decisions)
from haic_core.haicbench.split_pool import haic_train_ids, latest_verified, without_haic_train, without_leaked_content
from haic_assets.platform.partitions import UNPARTITIONED
from haic_assets.haicbench.qa_verified import VERIFIED_COLUMN_DOCS
from haic_platform.stage import StageContext, StageFailure, StageResult, partitioned_stage

EXPORT_DIR = "haicbench"


class HaicbenchSplitConfig(Config):
    n_videos: int = Field(default=PAPER_N_VIDEOS, ge=0)
    n_qa: int = Field(default=PAPER_N_QA, ge=0)
    category_quota: dict[str, int] = Field(default={c: PAPER_CATEGORY_QUOTA for c in CATEGORIES},
                                           description="QA per category (the paper: 400 each, evenly over the five "
                                                       "categories)")
    seed: int = Field(default=0)
    balance_answer_positions: bool = Field(
        default=True, description="place correct answers exactly evenly over positions within each category "
                                  "(deterministic); off: keep the seeded per-QA shuffle of qa_pairs")
    exclude_haic_train: bool = Field(
        default=True, description="leave out of the pool any clip or source video that is also in HAICTrain")
    copy_clips: bool = Field(
        default=True, description="copy the split's clips that the platform cut (action_filtered) to videos/ in "
                                  "the release, so the lmms-eval task finds them; clips_manifest.jsonl lists all")
    exclude_leaked_content: bool = Field(
        default=True, description="leave out of the pool any clip that haicbench_content_leakage found to show the "
                                  "same footage as a HAICTrain clip under another id (the pair is in the ledger)")
    answer_position_tolerance: float = Field(
        default=0.05, ge=0.0, le=1.0, description="the answer_positions_balanced check warns when a position's share of a category's "
                                  "correct answers is further than this from even")

    def params(self) -> SplitParams:
        return SplitParams(n_videos=self.n_videos, n_qa=self.n_qa, category_quota=dict(self.category_quota),
                           seed=self.seed)


@partitioned_stage("haicbench_split", HaicbenchSplitConfig,
                   ins={"qa_verified": AssetIn(partition_mapping=AllPartitionMapping())}, partitions=None,
                   deps=("haicbench_content_leakage",),
                   column_docs={**VERIFIED_COLUMN_DOCS,
                                "selection_rank": "the order in which the selection took the QA's video",
                                "picked_as": "anchor (the chosen video's first QA, so every video keeps one) or fill "
                                             "(taken to reach the category's quota)"})
def haicbench_split(stage: StageContext, config: HaicbenchSplitConfig, qa_verified: pd.DataFrame) -> StageResult:
    """The HAICBench test split chosen from the verified QA of all annotation batches (deterministic for
    a seed; sql/haicbench_*.sql), exported to exports/haicbench/ (JSONL, Parquet, lmms-eval task)."""
    pool, duplicates = latest_verified(qa_verified)
    excluded = []
    if config.exclude_haic_train:
        pool, excluded = without_haic_train(pool, *haic_train_ids(stage.storage.tables().read_all("haic_train")))
    leaked, content_checked = [], False
    if config.exclude_leaked_content:
        pairs = stage.storage.tables().read("haicbench_content_leakage", UNPARTITIONED)
        content_checked = pairs is not None
        if pairs is None:
            stage.log.warning("no haicbench_content_leakage table: the pool is not checked for footage shared with "
                              "HAICTrain under other ids (the haicbench_release job runs it first)")
        else:
            pool, leaked = without_leaked_content(pool, pairs)
    try:
        split = select_haicbench_split(pool, config.params())
    except InfeasibleSplitError as exc:
        raise StageFailure(f"the verified QA pool ({len(pool)} QA, {pool['video_id'].nunique() if len(pool) else 0}"
                           f" videos) cannot supply the HAICBench split: {exc}") from exc
    table = with_balanced_answer_positions(split.qa) if config.balance_answer_positions else split.qa

    exports, media = stage.storage.exports(), stage.storage.media()
    records = benchmark_records(table)
    cut = stage.storage.tables().read_all("action_filtered")
    clip_keys = dict(zip(cut["clip_id"], cut["clip_key"])) if len(cut) and "clip_key" in cut else {}
    split_clips = {r["clip_id"]: r["video"] for r in records}
    clip_uris = {c: portable_uri(media.uri, clip_keys[c]) for c in split_clips if c in clip_keys}
    for name, data in haicbench_release_files(records, split.videos, clip_uris=clip_uris).items():
        exports.put_bytes(f"{EXPORT_DIR}/{name}", data)
    copied = 0
    if config.copy_clips:
        for clip_id, video in split_clips.items():
            local = media.local_path(clip_keys[clip_id]) if clip_id in clip_keys else None
            if local is not None and local.is_file():
                exports.put_file(f"{EXPORT_DIR}/{video}", local)
                copied += 1
            elif clip_id in clip_keys and (data := media.get_bytes(clip_keys[clip_id])) is not None:
                exports.put_bytes(f"{EXPORT_DIR}/{video}", data)
                copied += 1
    out = f"{exports.uri}/{EXPORT_DIR}"
    metadata = {
        "videos": int(table["video_id"].nunique()), "qa": len(table), "pool_qa": len(pool),
        "pool_videos": int(pool["video_id"].nunique()), "duplicate_qa_ids_dropped": duplicates,
        "excluded_haic_train_qa": len(excluded), "excluded_leaked_content_qa": len(leaked),
        "content_leakage_checked": content_checked,
        "qa_per_category": MetadataValue.json(table["category"].value_counts().sort_index().to_dict()),
        "answer_positions": MetadataValue.md(answer_positions_markdown([QA.from_record(r)
                                                                        for r in table.to_dict("records")])),
        "export_dir": MetadataValue.path(out),
        "lmms_eval_task": MetadataValue.path(f"{out}/{LMMS_EVAL_FOLDER}/{TASK_NAME}.yaml"),
        "jsonl": MetadataValue.path(f"{out}/{SPLIT_JSONL}"),
        "clips_copied": copied, "clips_not_in_media_store": len(split_clips) - len(clip_uris),
    }
    stage.log.info(f"HAICBench split: {metadata['videos']} videos, {len(table)} QA from a pool of {len(pool)}; "
                   f"exported to {out}")
    return StageResult(table, split_decisions(pool, split) + excluded + leaked, metadata=metadata,
                       preview=["video_id", "category", "question", "answer_index", "picked_as"])

