"""Asset checks on the HAICBench test split: exact sizes, even categories, no HAICTrain overlap,
answer positions spread evenly. They read the stored split table, and the targets the split was
materialized with (its recorded config), so a launch with other targets is checked against those."""

import pandas as pd
from dagster import (AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetKey, MetadataValue,
                     asset_check)

from haic_core.haicbench.qa import QA
from haic_core.haicbench.qa_shuffle import answer_balance_by_category
from haic_core.haicbench.split_pool import haic_train_ids
from haic_resources.storage.resource import StorageResource
from haic_assets.haicbench.haicbench_split import HaicbenchSplitConfig, haicbench_split
from haic_assets.platform.partitions import UNPARTITIONED

SPLIT = haicbench_split.name
DEFAULT_TOLERANCE = HaicbenchSplitConfig.model_fields["answer_position_tolerance"].default


def _split(storage: StorageResource) -> pd.DataFrame:
    table = storage.tables().read(SPLIT, UNPARTITIONED)
    return pd.DataFrame() if table is None else table


def _targets(context: AssetCheckExecutionContext) -> HaicbenchSplitConfig:
    """The config of the latest materialization of the split (recorded in its metadata), else the defaults."""
    event = context.instance.get_latest_materialization_event(AssetKey(SPLIT))
    recorded = event.asset_materialization.metadata.get("config") if event and event.asset_materialization else None
    data = recorded.value if recorded is not None else {}
    return HaicbenchSplitConfig(**{k: v for k, v in data.items() if k in HaicbenchSplitConfig.model_fields})


@asset_check(asset=SPLIT, description="The split has exactly n_videos videos and n_qa QA (paper: 412 and 2,000).")
def split_sizes_exact(context: AssetCheckExecutionContext, storage: StorageResource) -> AssetCheckResult:
    table, targets = _split(storage), _targets(context)
    videos = int(table["video_id"].nunique()) if len(table) else 0
    return AssetCheckResult(passed=videos == targets.n_videos and len(table) == targets.n_qa,
                            metadata={"videos": videos, "qa": len(table), "n_videos": targets.n_videos,
                                      "n_qa": targets.n_qa})


@asset_check(asset=SPLIT, description="Each category holds exactly its quota of QA (paper: 400 each).")
def categories_balanced(context: AssetCheckExecutionContext, storage: StorageResource) -> AssetCheckResult:
    table, targets = _split(storage), _targets(context)
    counts = table["category"].value_counts().to_dict() if len(table) else {}
    off = {c: (int(counts.get(c, 0)), q) for c, q in targets.category_quota.items() if counts.get(c, 0) != q}
    extra = sorted(set(counts) - set(targets.category_quota))
    return AssetCheckResult(passed=not off and not extra,
                            metadata={"per_category": MetadataValue.json({k: int(v) for k, v in counts.items()}),
                                      "off_quota (got, needed)": MetadataValue.json(off),
                                      "unexpected_categories": MetadataValue.json(extra)})


@asset_check(asset=SPLIT, description="No clip and no source video is in both HAICTrain and the HAICBench split.")
def no_haic_train_overlap(storage: StorageResource) -> AssetCheckResult:
    table = _split(storage)
    clips, videos = haic_train_ids(storage.tables().read_all("haic_train"))
    clip_overlap = sorted(set(table["clip_id"].astype(str)) & clips) if len(table) else []
    video_overlap = sorted(set(table["video_id"].astype(str)) & videos) if len(table) else []
    return AssetCheckResult(passed=not clip_overlap and not video_overlap,
                            metadata={"haic_train_clips": len(clips), "haic_train_videos": len(videos),
                                      "shared_clips": MetadataValue.json(clip_overlap[:20]),
                                      "shared_videos": MetadataValue.json(video_overlap[:20])})


@asset_check(asset=SPLIT, description="Correct answers spread evenly over option positions in every category (no "
                                      "position's share further from even than the split's answer_position_tolerance, "
                                      f"default {DEFAULT_TOLERANCE:.0%}).")
def answer_positions_balanced(context: AssetCheckExecutionContext, storage: StorageResource) -> AssetCheckResult:
    table, tolerance = _split(storage), _targets(context).answer_position_tolerance
    qas = [QA.from_record(r) for r in table.to_dict("records")]
    balance = answer_balance_by_category(qas, tolerance=tolerance)
    return AssetCheckResult(
        passed=bool(balance) and all(b.balanced for b in balance.values()),
        severity=AssetCheckSeverity.WARN,
        metadata={"by_category": MetadataValue.json({c: {"counts": list(b.counts), "max_deviation": round(b.max_deviation, 4)}
                                                     for c, b in balance.items()}),
                  "tolerance": tolerance})


HAICBENCH_CHECKS = [split_sizes_exact, categories_balanced, no_haic_train_overlap, answer_positions_balanced]
