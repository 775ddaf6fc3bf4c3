"""haic_train_release: one HAICTrain release gathered from chosen partitions, the folder people train on.

exports/haic_train_releases/<name>/ holds every chosen partition's clips under one videos/ root, one
LLaVA-Video JSON, LLaVA-NeXT's --data_path yaml, Parquet and JSONL rows and a card
(haic_core.haic_train.gathered_release). No export field holds a local path. Before the step ends,
the folder is read back by LLaVA-NeXT's loading rules and every sample's video must exist and decode;
otherwise the step fails, naming the clips (LLaVA-NeXT itself would skip them silently).
"""

from pathlib import Path

from dagster import AllPartitionMapping, AssetDep, Config, MetadataValue
from pydantic import Field

from haic_core.haic_train.export import clip_file_name
from haic_core.haic_train.gathered_release import (DATA_YAML, gathered_release_files, gathered_table,
                                                   llava_next_samples, portable_uri)
from haic_resources.video.av_open import open_input
from haic_assets.haic_train.haic_train_release import HAIC_TRAIN_COLUMNS, _copy
from haic_platform.stage import StageContext, StageFailure, StageResult, partitioned_stage

EXPORT_DIR = "haic_train_releases"


class HaicTrainReleaseConfig(Config):
    name: str = Field(default="latest",
                      description="the release's name: its folder exports/haic_train_releases/<name>/")
    partitions: list[str] = Field(default=[], description="source partitions to gather (empty: every partition "
                                                          "with a HAICTrain table)")


@partitioned_stage("haic_train_release", HaicTrainReleaseConfig, partitions=None, records_decisions=False,
                   deps=(AssetDep("haic_train", partition_mapping=AllPartitionMapping()),),
                   column_docs={**HAIC_TRAIN_COLUMNS, "video": "the clip's file in the release, relative to its folder",
                                "source_partition": "the haic_train partition the clip comes from",
                                "clip_source": HAIC_TRAIN_COLUMNS["clip_uri"]})
def haic_train_release(stage: StageContext, config: HaicTrainReleaseConfig) -> StageResult:
    """One HAICTrain release of chosen partitions: one videos/ root, one LLaVA-Video JSON, a LLaVA-NeXT data
    yaml, Parquet and a card, checked by LLaVA-NeXT's loading rules (every video exists and decodes)."""
    name = clip_file_name(config.name, extension="") if config.name else ""
    if not name or name != config.name:
        raise StageFailure(f"haic_train_release: give the release a name of letters, digits, '.', '_' or '-' "
                           f"(config `name`; got {config.name!r})")
    tables, media, exports = stage.storage.tables(), stage.storage.media(), stage.storage.exports()
    available = tables.partitions("haic_train")
    chosen = list(config.partitions) or available
    unknown = [p for p in chosen if p not in available]
    if unknown or not chosen:
        raise StageFailure(f"haic_train_release: no HAICTrain table for {unknown or 'any partition'}; "
                           f"partitions with one: {available}")
    per_partition, keys = {}, {}
    for partition in chosen:
        per_partition[partition] = tables.read("haic_train", partition)
        judged = tables.read("caption_judgement", partition)  # what haic_train exported, with each clip's key
        keys.update(dict(zip(judged["clip_id"], judged["clip_key"])) if judged is not None else {})
    try:
        rows = gathered_table(per_partition, {c: portable_uri(media.uri, k) for c, k in keys.items()})
    except ValueError as exc:
        raise StageFailure(f"haic_train_release: {exc}") from None
    folder = f"{EXPORT_DIR}/{name}"
    missing = [c for c in rows["clip_id"] if c not in keys
               or not _copy(media, keys[c], exports, f"{folder}/videos/{clip_file_name(c)}")]
    if missing:
        raise StageFailure(f"haic_train_release {name}: {len(missing)} clips are not in the media store "
                           f"(first: {missing[:3]}); a release is whole or not made")
    wanted = {f"{folder}/videos/{clip_file_name(c)}" for c in rows["clip_id"]}
    for key in exports.list(f"{folder}/videos/"):
        if key not in wanted:  # a clip of an earlier release of this name that is no longer in it
            exports.delete(key)
    config_rows = {"partitions": ", ".join(chosen)}
    for file_name, data in gathered_release_files(name, rows, config_rows).items():
        exports.put_bytes(f"{folder}/{file_name}", data)
    unreadable = _check_with_llava_next_rules(exports, folder)
    if unreadable:
        raise StageFailure(f"haic_train_release {name}: {len(unreadable)} samples LLaVA-NeXT would skip: "
                           f"{unreadable[:3]}")
    stage.log.info(f"HAICTrain release {name}: {len(rows)} clips of {len(chosen)} partitions in {exports.uri}/{folder}")
    card = exports.get_bytes(f"{folder}/README.md").decode("utf-8")
    return StageResult(rows, None, preview=["clip_id", "source_partition", "video", "caption"],
                       metadata={"export_dir": f"{exports.uri}/{folder}", "records": len(rows),
                                 "partitions": MetadataValue.json(chosen), "card": MetadataValue.md(card),
                                 "data_yaml": DATA_YAML})


def _check_with_llava_next_rules(exports, folder: str) -> list[str]:
    """The samples whose video does not exist or does not decode, read as LLaVA-NeXT reads the release
    from its root (`--data_path haic_train_data.yaml --video_folder .`)."""
    root = exports.local_path(folder)
    if root is None:  # an S3 release: read back what was written
        return []

    def read(path: str) -> str:
        return (root / path).read_text(encoding="utf-8")

    bad = []
    for record, video in llava_next_samples(DATA_YAML, ".", read):
        path = root / video
        if not path.is_file() or not _decodes(path):
            bad.append(f"{record['id']}: {video}")
    return bad


def _decodes(path: Path) -> bool:
    try:
        with open_input(str(path)) as container:
            return next(container.decode(video=0), None) is not None
    except Exception:  # noqa: BLE001 - any failure to read is a video LLaVA-NeXT cannot use
        return False

