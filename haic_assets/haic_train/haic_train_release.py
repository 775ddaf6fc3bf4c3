"""haic_train: the HAICTrain release of one partition — JSONL, Parquet, LLaVA-Video conversations, card."""

import json

import pandas as pd
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from haic_core.haic_train.export import CaptionedClip, dataset_card_markdown, to_conversation_records
from haic_core.ledger import reason_class
from haic_resources.storage.resource import StorageResource
from haic_assets.platform.partition_runs import BACKFILL_POLICY, each_partition
from haic_assets.platform.partitions import source_shards
from haic_assets.platform.settings import stage_code_version

STAGE = "haic_train"
EXPORT_COLUMNS = ["clip_id", "clip_uri", "caption", "original_description", "video_id", "provider", "model",
                  "prompt_version"]


@asset(
    partitions_def=source_shards,
    io_manager_key="tables",
    group_name="haic_train",
    code_version=stage_code_version(STAGE),
    description="HAICTrain rows (clip, clip uri, caption, original description, provenance), exported to "
                "exports/haic_train/<partition>/ as JSONL, Parquet, LLaVA-Video conversation JSON and a card.",
    backfill_policy=BACKFILL_POLICY,
)
def haic_train(context: AssetExecutionContext, caption_judgement, storage: StorageResource) -> Output:
    return each_partition(context, _haic_train, inputs=("caption_judgement",), caption_judgement=caption_judgement,
                          storage=storage)


def _haic_train(context: AssetExecutionContext, caption_judgement: pd.DataFrame,
               storage: StorageResource) -> Output[pd.DataFrame]:
    media_uri = storage.media().uri
    table = pd.DataFrame({
        "clip_id": caption_judgement["clip_id"],
        "clip_uri": [f"{media_uri}/{key}" for key in caption_judgement["clip_key"]],
        "caption": caption_judgement["caption"],
        "original_description": caption_judgement["description"],
        "video_id": caption_judgement["video_id"],
        "provider": caption_judgement["provider"],
        "model": caption_judgement["model"],
        "prompt_version": caption_judgement["prompt_version"],
    }, columns=EXPORT_COLUMNS)
    rows = [CaptionedClip(r.clip_id, r.clip_uri, r.caption, r.original_description,
                          {"video_id": r.video_id, "model": r.model, "prompt_version": r.prompt_version,
                           "partition": context.partition_key, "run_id": context.run.run_id})
            for r in table.itertuples(index=False)]
    ledger = storage.tables().read("ledger/caption_judgement", context.partition_key)
    dropped = {}
    if ledger is not None:
        for reason in ledger.loc[ledger["verdict"] != "kept", "reason"]:
            dropped[reason_class(reason)] = dropped.get(reason_class(reason), 0) + 1
    out = storage.layout.exports / "haic_train" / context.partition_key
    out.mkdir(parents=True, exist_ok=True)
    table.to_json(out / "haic_train.jsonl", orient="records", lines=True, force_ascii=False)
    table.to_parquet(out / "haic_train.parquet", index=False)
    (out / "llava_video_conversations.json").write_text(
        json.dumps(to_conversation_records(rows), indent=1, ensure_ascii=False))
    card = dataset_card_markdown(rows, dropped_by_reason=dropped, source=context.partition_key.split("__")[0])
    (out / "README.md").write_text(card)
    context.log.info(f"HAICTrain [{context.partition_key}]: {len(table)} clips exported to {out}")
    return Output(table, metadata={"rows": len(table), "export_dir": str(out), "card": MetadataValue.md(card)})
