"""haic_train: the HAICTrain release of one partition — JSONL, Parquet, LLaVA-Video conversations,
the clip manifest, the clips themselves under videos/, and a card."""

import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd
from dagster import Config, MetadataValue
from pydantic import Field

from haic_core.haic_train.export import (captioned_clips, count_by_reason_class, dataset_card_markdown,
                                         export_video_path, release_files, release_table)
from haic_resources.storage.object_store import ObjectStore
from haic_assets.haic_train.captions import CAPTION_COLUMNS
from haic_platform.stage import StageContext, StageResult, partitioned_stage

HAIC_TRAIN_COLUMNS = {
    "clip_id": CAPTION_COLUMNS["clip_id"],
    "clip_uri": "the clip in the media store (s3:// or relative to it): an export holds no local path",
    "caption": "the judged caption (HAICTrain's text)",
    "original_description": "the source's description of the video, which the caption prompt saw",
    **{name: CAPTION_COLUMNS[name] for name in ("video_id", "provider", "model", "prompt_version")},
}


class HaicTrainConfig(Config):
    """The release exports what the caption judgement kept."""

    copy_clips: bool = Field(default=True, description="copy each clip to videos/ beside the conversation records, "
                                                       "so the folder loads as LLaVA-Video's --video_folder; off: "
                                                       "only clips_manifest.jsonl says where each clip is")


@partitioned_stage("haic_train", HaicTrainConfig, ins=("caption_judgement",), records_decisions=False,
                   column_docs=HAIC_TRAIN_COLUMNS)
def haic_train(stage: StageContext, config: HaicTrainConfig, caption_judgement: pd.DataFrame) -> StageResult:
    """HAICTrain rows (clip, clip uri, caption, original description, provenance), exported to
    exports/haic_train/<partition>/ as JSONL, Parquet, LLaVA-Video conversation JSON (video paths
    relative to that folder), a clip manifest, the clips under videos/ and a card."""
    release = release_table(caption_judgement, stage.storage.media().uri)
    clips = captioned_clips(release, {"partition": stage.partition_key, "run_id": stage.run_id})
    judged = stage.storage.tables().read("ledger/caption_judgement", stage.partition_key)
    removed = pd.DataFrame() if judged is None else judged[judged["verdict"] != "kept"]
    # By reason code; a ledger written before reason codes groups by reason class instead.
    dropped = (dict(Counter(removed["reason_code"])) if "reason_code" in removed and removed["reason_code"].notna().all()
               else count_by_reason_class(removed.get("reason", [])))
    card = dataset_card_markdown(clips, dropped_by_reason=dropped, source=stage.partition_key.split("__")[0])
    exports, folder = stage.storage.exports(), f"haic_train/{stage.partition_key}"
    for name, data in release_files(release, clips, card).items():
        exports.put_bytes(f"{folder}/{name}", data)
    missing = []
    if config.copy_clips:
        media = stage.storage.media()
        for clip_id, key in zip(caption_judgement["clip_id"], caption_judgement["clip_key"]):
            if not _copy(media, key, exports, f"{folder}/{export_video_path(clip_id)}"):
                missing.append(clip_id)
    if missing:
        stage.log.warning(f"HAICTrain [{stage.partition_key}]: {len(missing)} clips not in the media store, so not "
                          f"in videos/ (first: {missing[:3]}); clips_manifest.jsonl still lists them")
    stage.log.info(f"HAICTrain [{stage.partition_key}]: {len(release)} clips exported to {exports.uri}/{folder}")
    return StageResult(release, None,
                       metadata={"export_dir": f"{exports.uri}/{folder}", "card": MetadataValue.md(card),
                                 "clips_copied": len(release) - len(missing) if config.copy_clips else 0,
                                 "clips_missing": len(missing)})


def _copy(source: ObjectStore, key: str, target: ObjectStore, target_key: str) -> bool:
    """One clip from the media store into the export; False when the media store has no such clip."""
    local = source.local_path(key)
    if local is not None:
        if not local.is_file():
            return False
        target.put_file(target_key, local)
        return True
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "clip"
        if not source.get_file(key, path):
            return False
        target.put_file(target_key, path)
    return True
