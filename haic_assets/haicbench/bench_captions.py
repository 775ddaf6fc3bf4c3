"""bench_captions: one batch of human-written HAICBench captions, checked against the standardized format.

A batch is a folder `HAIC_HOME/annotations/<batch>/` holding `captions.jsonl` or `captions.csv`
(clip_id, caption, writer, checkers; optional video_id). The folder name is the partition key.
"""

import json
import re
from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, Config, Failure, Output, asset
from pydantic import Field

from haic_core.haic_train.caption_format import DEFAULT_MAX_WORDS, DEFAULT_MIN_WORDS, check_caption
from haic_core.decisions import dropped
from haic_core.haicbench.qa_parsing import subject_count_from_caption
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.platform.ledger import preview, record_decisions
from haic_assets.platform.partitions import annotation_batches
from haic_assets.platform.settings import setting, stage_code_version

STAGE = "bench_captions"
CAPTION_FILES = ("captions.jsonl", "captions.csv")
BENCH_CAPTION_COLUMNS = ["clip_id", "video_id", "video_id_source", "caption", "writer", "checkers", "subject_count"]
# Clip ids our scene split makes: "<video_id>-<10 hex digits>" (haic_core.accumulation.scenes.clip_id_for).
_SCENE_CLIP_ID = re.compile(r"^(?P<video>.+)-[0-9a-f]{10}$")


class BenchCaptionConfig(Config):
    min_words: int = Field(default=setting(STAGE, "min_words", DEFAULT_MIN_WORDS))
    max_words: int = Field(default=setting(STAGE, "max_words", DEFAULT_MAX_WORDS))


def annotation_dir(storage: StorageResource, batch: str) -> Path:
    return storage.layout.root / "annotations" / batch


def read_caption_export(folder: Path) -> pd.DataFrame:
    """The batch's caption export as rows (JSONL preferred over CSV when both exist)."""
    for name in CAPTION_FILES:
        path = folder / name
        if path.is_file():
            if name.endswith(".jsonl"):
                return pd.read_json(path, lines=True, dtype=False)
            return pd.read_csv(path, dtype=str, keep_default_na=False)
    raise Failure(description=f"annotation batch {folder.name!r} has no {' or '.join(CAPTION_FILES)} in {folder}")


def checkers_list(value) -> list[str]:
    """Checkers as a list, from a JSON list, a list, or 'a;b;c' / 'a,b,c' text."""
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if value is None or (isinstance(value, float) and value != value):
        return []
    text = str(value).strip()
    if text.startswith("["):
        return [str(v) for v in json.loads(text)]
    return [part.strip() for part in re.split(r"[;,|]", text) if part.strip()]


def video_id_of(row: dict) -> tuple[str, str]:
    """(video_id, where it came from): the export's video_id, our scene-split clip id pattern,
    or the clip itself standing for its video (one clip per video: the leakage check then
    guards the clip id only)."""
    given = row.get("video_id")
    if given is not None and str(given).strip() and str(given) != "nan":
        return str(given).strip(), "annotation"
    match = _SCENE_CLIP_ID.match(row["clip_id"])
    if match:
        return match.group("video"), "clip_id pattern"
    return row["clip_id"], "clip_id (no video id given)"


@asset(
    partitions_def=annotation_batches,
    io_manager_key="tables",
    group_name="haicbench",
    code_version=stage_code_version(STAGE, BenchCaptionConfig),
    description="Human-written HAICBench captions of one annotation batch (annotations/<batch>/captions."
                "{jsonl,csv}) that pass the standardized-format check; the rest are in the ledger with the reason.",
)
def bench_captions(context: AssetExecutionContext, config: BenchCaptionConfig, storage: StorageResource,
                   warehouse: WarehouseResource) -> Output[pd.DataFrame]:
    export = read_caption_export(annotation_dir(storage, context.partition_key))
    missing = [c for c in ("clip_id", "caption") if c not in export.columns]
    if missing:
        raise Failure(description=f"caption export of batch {context.partition_key!r} lacks columns {missing}")
    rows, decisions, seen = [], [], {}
    for number, row in enumerate(export.to_dict("records"), start=1):
        clip_id = str(row.get("clip_id") or "").strip()
        if not clip_id:
            decisions.append(dropped(f"{context.partition_key}#row{number}", "missing clip_id", item_kind="caption"))
            continue
        row["clip_id"] = clip_id
        video_id, video_id_source = video_id_of(row)
        if clip_id in seen:
            decisions.append(dropped(clip_id, f"duplicate clip_id (row {seen[clip_id]})", item_kind="caption",
                                     parent_id=video_id))
            continue
        seen[clip_id] = number
        caption = str(row.get("caption") or "")
        decision = check_caption(caption, item_id=clip_id, parent_id=video_id,
                                 min_words=config.min_words, max_words=config.max_words)
        decisions.append(decision)
        if decision.verdict != "kept":
            continue
        rows.append({"clip_id": clip_id, "video_id": video_id, "video_id_source": video_id_source, "caption": caption,
                     "writer": str(row.get("writer") or ""), "checkers": checkers_list(row.get("checkers")),
                     "subject_count": subject_count_from_caption(caption)})
    table = pd.DataFrame(rows, columns=BENCH_CAPTION_COLUMNS).astype({"subject_count": "Int64"})
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(rows=len(table), preview=preview(table, ["clip_id", "video_id", "subject_count", "writer", "caption"]))
    return Output(table, metadata=metadata)
