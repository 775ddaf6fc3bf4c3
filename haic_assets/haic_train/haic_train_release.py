"""haic_train: the HAICTrain release of one partition — JSONL, Parquet, LLaVA-Video conversations, card."""

import pandas as pd
from dagster import Config, MetadataValue

from haic_core.haic_train.export import (captioned_clips, count_by_reason_class, dataset_card_markdown,
                                         release_files, release_table)
from haic_assets.platform.stage import StageContext, StageResult, partitioned_stage


class HaicTrainConfig(Config):
    """The release has no settings: it exports what the caption judgement kept."""


@partitioned_stage("haic_train", HaicTrainConfig, ins=("caption_judgement",), records_decisions=False)
def haic_train(stage: StageContext, config: HaicTrainConfig, caption_judgement: pd.DataFrame) -> StageResult:
    """HAICTrain rows (clip, clip uri, caption, original description, provenance), exported to
    exports/haic_train/<partition>/ as JSONL, Parquet, LLaVA-Video conversation JSON and a card."""
    release = release_table(caption_judgement, stage.storage.media().uri)
    clips = captioned_clips(release, {"partition": stage.partition_key, "run_id": stage.run_id})
    judged = stage.storage.tables().read("ledger/caption_judgement", stage.partition_key)
    dropped = {} if judged is None else count_by_reason_class(judged.loc[judged["verdict"] != "kept", "reason"])
    card = dataset_card_markdown(clips, dropped_by_reason=dropped, source=stage.partition_key.split("__")[0])
    exports, folder = stage.storage.exports(), f"haic_train/{stage.partition_key}"
    for name, data in release_files(release, clips, card).items():
        exports.put_bytes(f"{folder}/{name}", data)
    stage.log.info(f"HAICTrain [{stage.partition_key}]: {len(release)} clips exported to {exports.uri}/{folder}")
    return StageResult(release, None,
                       metadata={"export_dir": f"{exports.uri}/{folder}", "card": MetadataValue.md(card)})
