"""haicbench_split: the HAICBench test split (412 videos, 2,000 QA, 400 per category) from every batch's
verified QA, exported as JSONL, Parquet and an lmms-eval task folder."""

import pandas as pd
from dagster import AllPartitionMapping, AssetExecutionContext, AssetIn, Config, Failure, MetadataValue, Output, asset
from pydantic import Field

from haic_core.decisions import dropped
from haic_core.haicbench.export import benchmark_records, export_lmms_eval_task, export_split_jsonl, export_split_parquet
from haic_core.haicbench.split import (PAPER_CATEGORY_QUOTA, PAPER_N_QA, PAPER_N_VIDEOS, InfeasibleSplitError,
                                       SplitParams, select_haicbench_split, split_decisions)
from haic_core.haicbench.qa_parsing import CATEGORIES, QA
from haic_core.haicbench.qa_shuffle import balance_answer_positions
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.platform.ledger import preview, record_decisions
from haic_assets.haicbench.qa_pairs import answer_positions_md
from haic_assets.platform.settings import setting, stage_code_version

STAGE = "haicbench_split"
EXPORT_DIR = "haicbench"


class HaicbenchSplitConfig(Config):
    n_videos: int = Field(default=setting(STAGE, "n_videos", PAPER_N_VIDEOS))
    n_qa: int = Field(default=setting(STAGE, "n_qa", PAPER_N_QA))
    category_quota: dict[str, int] = Field(
        default=setting(STAGE, "category_quota", {c: PAPER_CATEGORY_QUOTA for c in CATEGORIES}),
        description="QA per category (the paper: 400 each, evenly over the five categories)")
    seed: int = Field(default=setting(STAGE, "seed", 0))
    balance_answer_positions: bool = Field(
        default=setting(STAGE, "balance_answer_positions", True),
        description="place correct answers exactly evenly over positions within each category (deterministic); "
                    "off: keep the seeded per-QA shuffle of qa_pairs")
    exclude_haic_train: bool = Field(
        default=setting(STAGE, "exclude_haic_train", True),
        description="leave out of the pool any clip or source video that is also in HAICTrain")

    def params(self) -> SplitParams:
        return SplitParams(n_videos=self.n_videos, n_qa=self.n_qa, category_quota=dict(self.category_quota),
                           seed=self.seed)


@asset(
    ins={"qa_verified": AssetIn(partition_mapping=AllPartitionMapping())},
    io_manager_key="tables",
    group_name="haicbench",
    code_version=stage_code_version(STAGE, HaicbenchSplitConfig),
    description="The HAICBench test split chosen from the verified QA of all annotation batches (deterministic for "
                "a seed; sql/haicbench_*.sql), exported to exports/haicbench/ (JSONL, Parquet, lmms-eval task).",
)
def haicbench_split(context: AssetExecutionContext, config: HaicbenchSplitConfig, qa_verified: pd.DataFrame,
                    storage: StorageResource, warehouse: WarehouseResource) -> Output[pd.DataFrame]:
    pool = qa_verified.drop_duplicates("qa_id", keep="last").reset_index(drop=True)
    duplicates = len(qa_verified) - len(pool)
    pool, excluded = _without_haic_train(pool, storage) if config.exclude_haic_train else (pool, [])
    try:
        split = select_haicbench_split(pool, config.params())
    except InfeasibleSplitError as exc:
        raise Failure(description=f"the verified QA pool ({len(pool)} QA, {pool['video_id'].nunique() if len(pool) else 0}"
                                  f" videos) cannot supply the HAICBench split: {exc}") from exc
    table = split.qa
    if config.balance_answer_positions:
        placed = {qa.qa_id: qa for qa in balance_answer_positions(_qas(table))}
        table = table.assign(options=[list(placed[q].options) for q in table["qa_id"]],
                             answer_index=[placed[q].answer_index for q in table["qa_id"]])

    out = storage.layout.exports / EXPORT_DIR
    records = benchmark_records(table)
    paths = {"jsonl": export_split_jsonl(records, out), "parquet": export_split_parquet(records, out)}
    split.videos.to_parquet(out / "haicbench_test_videos.parquet", index=False)
    task = export_lmms_eval_task(records, out / "lmms_eval")

    decisions = split_decisions(pool, split) + excluded
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(
        videos=int(table["video_id"].nunique()), qa=len(table), pool_qa=len(pool), pool_videos=int(pool["video_id"].nunique()),
        duplicate_qa_ids_dropped=duplicates, excluded_haic_train_qa=len(excluded),
        qa_per_category=MetadataValue.json(table["category"].value_counts().sort_index().to_dict()),
        answer_positions=MetadataValue.md(answer_positions_md(table)),
        export_dir=MetadataValue.path(str(out)), lmms_eval_task=MetadataValue.path(str(task["yaml"])),
        jsonl=MetadataValue.path(str(paths["jsonl"])),
        preview=preview(table, ["video_id", "category", "question", "answer_index", "picked_as"]),
    )
    context.log.info(f"HAICBench split: {metadata['videos']} videos, {len(table)} QA from a pool of {len(pool)}; "
                     f"exported to {out}")
    return Output(table, metadata=metadata)


def _qas(table: pd.DataFrame) -> list[QA]:
    return [QA(r.qa_id, r.clip_id, r.category, r.question, tuple(r.options), int(r.answer_index),
               str(getattr(r, "model", "")), str(getattr(r, "prompt_version", ""))) for r in table.itertuples(index=False)]


def haic_train_ids(storage: StorageResource) -> tuple[set[str], set[str]]:
    """(clip ids, video ids) of HAICTrain over all its partitions; empty when it has none yet."""
    train = storage.tables().read_all("haic_train")
    if train.empty:
        return set(), set()
    return set(train["clip_id"].astype(str)), set(train["video_id"].dropna().astype(str))


def _without_haic_train(pool: pd.DataFrame, storage: StorageResource):
    clips, videos = haic_train_ids(storage)
    if not clips and not videos:
        return pool, []
    overlap = pool["clip_id"].astype(str).isin(clips) | pool["video_id"].astype(str).isin(videos)
    excluded = [dropped(r.qa_id, "clip or its source video is in HAICTrain", item_kind="qa", parent_id=r.clip_id,
                        detail={"video_id": r.video_id, "category": r.category})
                for r in pool[overlap].itertuples(index=False)]
    return pool[~overlap].reset_index(drop=True), excluded
