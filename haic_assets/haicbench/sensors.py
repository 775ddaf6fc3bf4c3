"""New HAICBench annotation batches become partitions; their captions, QA and reviews become runs.

A batch folder `<batch>/` of the annotations store (HAIC_HOME/annotations, or
HAIC_ANNOTATIONS_URI) arrives in two steps, as annotation works:
0. `haic annotation-task <batch>` exports the clips the batch annotates (annotation_tasks);
1. `captions.{jsonl,csv}` (and, when the QA were generated elsewhere, `qa_raw/`): the batch becomes
   an `annotation_batches` partition and a run makes bench_captions and qa_pairs (source
   raw_files when qa_raw/ is there, else the LLM: skipped with a log line when none is configured);
2. `reviews.csv`, once qa_pairs exists for the batch: a run makes qa_verified. A changed caption
   export or review sheet (other content) runs its stages again.

With Label Studio configured, each tick first pulls the tool's work by its cursor (the latest task update
seen per project) into those same files (annotation_tool_sync.py): written captions become checking tasks,
a batch's QA verification tasks, finished steps captions.jsonl + clip_checks.csv and reviews.csv. An edit
in the tool after import changes a file, so its stage runs again.
"""

import json

from dagster import (AssetKey, DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason,
                     sensor)

from haic_core.haicbench.annotations import REVIEWS_FILE, caption_file, files_by_batch, has_raw_answers
from haic_resources.annotation.label_studio import AnnotationToolError, LabelStudioResource
from haic_resources.llm.resource import NOT_CONFIGURED, LLMResource
from haic_resources.storage.files import sha256_bytes
from haic_resources.storage.resource import StorageResource
from haic_platform.annotation_tool_sync import sign_offs_required, sync_batch
from haic_assets.platform.jobs import HAICBENCH_BATCH_JOB
from haic_assets.platform.partitions import annotation_batches

GENERATE = [AssetKey("bench_captions"), AssetKey("qa_pairs")]
VERIFY = [AssetKey("qa_verified")]


@sensor(job_name=HAICBENCH_BATCH_JOB, minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Watches annotations/<batch>/ (under HAIC_HOME, or HAIC_ANNOTATIONS_URI): a batch with captions "
                    "becomes an annotation_batches partition and a bench_captions + qa_pairs run; its reviews.csv a "
                    "qa_verified run. With Label Studio configured, first pulls the tool's finished work into "
                    "those files.")
def annotation_sensor(context: SensorEvaluationContext, storage: StorageResource, llm: LLMResource,
                      annotation_tool: LabelStudioResource):
    annotations = storage.annotations()
    cursor = json.loads(context.cursor) if context.cursor else {}
    existing = set(context.instance.get_dynamic_partitions(annotation_batches.name))
    generated = set(storage.tables().partitions("qa_pairs"))
    tasked = set(storage.tables().partitions("annotation_tasks"))
    if annotation_tool.configured:
        _pull_tool_work(annotation_tool, sorted(tasked), cursor, annotations, storage.tables(), context.log)
    new_keys, requests = [], []
    for batch, files in sorted(files_by_batch(annotations.list()).items()):
        captions, seen = caption_file(files), cursor.get(batch, {})
        if captions is None:
            continue
        if batch not in existing:
            new_keys.append(batch)
        # Content, not modification time: an object store keeps no mtime, and a rewrite with
        # the same content has nothing new to run.
        stamp = sha256_bytes(annotations.get_bytes(f"{batch}/{captions}"))
        if seen.get("captions") != stamp:
            source = "raw_files" if has_raw_answers(files) else "llm"
            if batch not in tasked:
                context.log.warning(f"annotations/{batch}: its captions wait for the batch's annotation task "
                                    f"(`haic annotation-task {batch} --partition SOURCE_PARTITION`)")
            elif source == "llm" and not llm.configured:
                context.log.warning(f"annotations/{batch}: QA generation waits for an LLM backend: {NOT_CONFIGURED}")
            else:
                requests.append(RunRequest(partition_key=batch, run_key=f"annotations:{batch}:captions:{stamp}",
                                           asset_selection=GENERATE,
                                           run_config={"ops": {"qa_pairs": {"config": {"source": source}}}}))
                seen["captions"] = stamp
        if REVIEWS_FILE in files and batch in generated:
            reviews_stamp = sha256_bytes(annotations.get_bytes(f"{batch}/{REVIEWS_FILE}"))
            if seen.get("reviews") != reviews_stamp:
                seen["reviews"] = reviews_stamp
                requests.append(RunRequest(partition_key=batch, run_key=f"annotations:{batch}:reviews:{reviews_stamp}",
                                           asset_selection=VERIFY))
        cursor[batch] = seen
    if not new_keys and not requests:
        return SensorResult(skip_reason=SkipReason("no new annotation batches or review sheets"),
                            cursor=json.dumps(cursor, sort_keys=True))
    return SensorResult(run_requests=requests,
                        dynamic_partitions_requests=([annotation_batches.build_add_request(new_keys)]
                                                     if new_keys else []),
                        cursor=json.dumps(cursor, sort_keys=True))


def _pull_tool_work(tool: LabelStudioResource, batches: list[str], cursor: dict, annotations, tables, log) -> None:
    """The tool's new work of every tasked batch into its folder; a batch the tool cannot serve now is
    logged and tried again next tick (its cursor unchanged)."""
    client, required = tool.client(), sign_offs_required()
    for batch in batches:
        seen = cursor.setdefault(batch, {})
        try:
            seen["tool"] = sync_batch(client, batch, seen.get("tool", {}), annotations, tables, log, required)
        except AnnotationToolError as exc:
            log.warning(f"annotation tool, batch {batch}: {exc}")
