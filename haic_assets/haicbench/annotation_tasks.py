"""annotation_tasks: the kept clips of chosen source partitions, exported for the manual check and
the caption writers of one annotation batch (exports/annotation_tasks/<batch>/).

Partitioned like the annotation batches: a task is what one batch of writers and checkers is
handed, and the batch they hand back (captions, reviews) is checked against exactly that task
(bench_captions reads its own batch's task). The source partitions are the task's setting
(`source_partitions`), so one batch may gather clips of several shards; the asset graph shows
action_filtered -> annotation_tasks -> bench_captions.

With an annotation tool configured (HAIC_LABEL_STUDIO_URL and _TOKEN), the clips are also pushed to the
batch's Label Studio writing project, once each (annotation_tool_sync.py).
"""

from pathlib import Path

from dagster import AllPartitionMapping, AssetDep, Config
from pydantic import Field

from haic_core.haicbench.annotation_tasks import (PAPER_CHECKERS, PAPER_WRITERS, TASK_MANIFEST, TASK_README,
                                                  exported, task_manifest, task_readme, task_table)
from haic_resources.annotation.label_studio import AnnotationToolError
from haic_platform.annotation_tool_sync import push_writing_tasks
from haic_assets.platform.partitions import annotation_batches
from haic_assets.accumulation.action_filtered import FILTERED_COLUMNS
from haic_platform.stage import StageContext, StageFailure, StageResult, partitioned_stage

TASK_COLUMN_DOCS = {
    **FILTERED_COLUMNS,
    "source_partition": "the source partition whose action_filtered kept the clip",
    "video": "the clip's file in the task folder, for the caption writers",
}

EXPORT_DIR = "annotation_tasks"


class AnnotationTaskConfig(Config):
    source_partitions: list[str] = Field(
        default=[], description="source shards (partitions of action_filtered) whose kept clips this batch annotates")
    copy_clips: bool = Field(default=True, description="copy the clip files into the task folder (off: the "
                                                       "manifest's object-store URIs only)")
    writers_required: int = Field(default=PAPER_WRITERS, ge=1, description="the paper: 1 writer per caption")
    checkers_required: int = Field(default=PAPER_CHECKERS, ge=0,
                                   description="the paper: 3 checkers per caption, other than its writer")
    push_to_tool: bool = Field(default=True, description="push the clips as tasks to the annotation tool (Label "
                                                         "Studio) when one is configured")


@partitioned_stage("annotation_tasks", AnnotationTaskConfig, partitions=annotation_batches,
                   deps=(AssetDep("action_filtered", partition_mapping=AllPartitionMapping()),),
                   settings_from={"writers_required": "bench_captions", "checkers_required": "bench_captions"},
                   resources=("annotation_tool",), column_docs=TASK_COLUMN_DOCS)
def annotation_tasks(stage: StageContext, config: AnnotationTaskConfig) -> StageResult:
    """The clips one annotation batch checks and captions: the kept clips (action_filtered) of the chosen
    source partitions, with a manifest of their facts, in exports/annotation_tasks/<batch>/."""
    batch, tables = stage.partition_key, stage.storage.tables()
    previous = tables.read("annotation_tasks", batch)
    # A re-run without settings (the UI's Materialize, a re-execution) exports the partitions it exported before.
    partitions = list(config.source_partitions) or (
        list(dict.fromkeys(previous["source_partition"])) if previous is not None and len(previous) else [])
    if not partitions:
        raise StageFailure(f"annotation task {batch}: name the source partitions whose clips it exports "
                           "(config source_partitions, or `haic annotation-task BATCH --partition P`)")
    kept_clips = {}
    for partition in partitions:
        table = tables.read("action_filtered", partition)
        if table is None:
            raise StageFailure(f"annotation task {batch}: action_filtered has no partition {partition!r}; "
                               "run the main job for it first")
        kept_clips[partition] = table
    media, exports = stage.storage.media(), stage.storage.exports()
    table, decisions = task_table(kept_clips, media.uri)
    folder = f"{EXPORT_DIR}/{batch}"
    missing = set()
    if config.copy_clips:
        for clip in table.itertuples(index=False):
            if not _copy_clip(media, exports, clip, f"{folder}/{clip.video}"):
                missing.add(clip.clip_id)
    decisions += exported(table, batch, missing)
    table = table[~table["clip_id"].isin(missing)].reset_index(drop=True)
    exports.put_bytes(f"{folder}/{TASK_MANIFEST}", task_manifest(table))
    exports.put_bytes(f"{folder}/{TASK_README}", task_readme(batch, len(table), config.writers_required,
                                                             config.checkers_required).encode("utf-8"))
    metadata = {"clips": len(table), "task_folder": f"{exports.uri}/{folder}", "source_partitions": ", ".join(partitions)}
    if config.push_to_tool and stage.annotation_tool.configured:
        try:
            metadata.update(push_writing_tasks(stage.annotation_tool, batch, table, media, tables))
        except (ValueError, AnnotationToolError) as exc:
            raise StageFailure(f"annotation task {batch}: {exc}", decisions) from exc
        stage.log.info(f"annotation task {batch}: {metadata['tasks_added']} task(s) added to "
                       f"{metadata['label_studio_project']}, {metadata['tasks_already_there']} already there")
    return StageResult(table, decisions, preview=["clip_id", "video_id", "source_partition", "length_s", "video"],
                       metadata=metadata)


def _copy_clip(media, exports, clip, key: str) -> bool:
    """Copy one clip into the task folder: the platform's cut (its local file), else the media store's object."""
    local = media.local_path(clip.clip_key) if clip.clip_key else None
    for path in (local, clip.clip_path):
        if isinstance(path, (str, Path)) and path and Path(path).is_file():
            exports.put_file(key, path)
            return True
    data = media.get_bytes(clip.clip_key) if clip.clip_key else None
    if data is None:
        return False
    exports.put_bytes(key, data)
    return True
