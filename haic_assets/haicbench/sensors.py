"""New HAICBench annotation batches become partitions; their captions, QA and reviews become runs.

A batch folder `HAIC_HOME/annotations/<batch>/` arrives in two steps, as annotation works:
1. `captions.{jsonl,csv}` (and, when the QA were generated elsewhere, `qa_raw/`): the batch becomes
   an `annotation_batches` partition and a run makes bench_captions and qa_pairs (source
   raw_files when qa_raw/ is there, else the LLM: skipped with a log line when none is configured);
2. `reviews.csv`, once qa_pairs exists for the batch: a run makes qa_verified. A changed review
   sheet (new mtime) runs it again.
"""

import json

from dagster import (AssetKey, DefaultSensorStatus, RunRequest, SensorEvaluationContext, SensorResult, SkipReason,
                     sensor)

from haic_resources.llm.resource import NOT_CONFIGURED, LLMResource
from haic_resources.storage.resource import StorageResource
from haic_assets.haicbench.bench_captions import CAPTION_FILES
from haic_assets.platform.partitions import annotation_batches
from haic_assets.haicbench.qa_verified import REVIEWS_FILE

HAICBENCH_BATCH_JOB = "haicbench_batch"  # defined in haic_assets.platform.jobs
HAICBENCH_RELEASE_JOB = "haicbench_release"
GENERATE = [AssetKey("bench_captions"), AssetKey("qa_pairs")]
VERIFY = [AssetKey("qa_verified")]


@sensor(job_name=HAICBENCH_BATCH_JOB, minimum_interval_seconds=60, default_status=DefaultSensorStatus.RUNNING,
        description="Watches annotations/<batch>/ under HAIC_HOME: a batch with captions becomes an annotation_batches "
                    "partition and a bench_captions + qa_pairs run; its reviews.csv a qa_verified run.")
def annotation_sensor(context: SensorEvaluationContext, storage: StorageResource, llm: LLMResource):
    root = storage.layout.root / "annotations"
    cursor = json.loads(context.cursor) if context.cursor else {}
    existing = set(context.instance.get_dynamic_partitions(annotation_batches.name))
    generated = set(storage.tables().partitions("qa_pairs"))
    new_keys, requests = [], []
    for folder in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else ():
        batch, seen = folder.name, cursor.get(folder.name, {})
        captions = next((folder / n for n in CAPTION_FILES if (folder / n).is_file()), None)
        if captions is None:
            continue
        if batch not in existing:
            new_keys.append(batch)
        stamp = str(captions.stat().st_mtime_ns)
        if seen.get("captions") != stamp:
            source = "raw_files" if (folder / "qa_raw").is_dir() else "llm"
            if source == "llm" and not llm.configured:
                context.log.warning(f"annotations/{batch}: QA generation waits for an LLM backend: {NOT_CONFIGURED}")
            else:
                requests.append(RunRequest(partition_key=batch, run_key=f"annotations:{batch}:captions:{stamp}",
                                           asset_selection=GENERATE,
                                           run_config={"ops": {"qa_pairs": {"config": {"source": source}}}}))
                seen["captions"] = stamp
        reviews = folder / REVIEWS_FILE
        if reviews.is_file() and batch in generated and seen.get("reviews") != str(reviews.stat().st_mtime_ns):
            seen["reviews"] = str(reviews.stat().st_mtime_ns)
            requests.append(RunRequest(partition_key=batch, run_key=f"annotations:{batch}:reviews:{seen['reviews']}",
                                       asset_selection=VERIFY))
        cursor[batch] = seen
    if not new_keys and not requests:
        return SensorResult(skip_reason=SkipReason("no new annotation batches or review sheets"),
                            cursor=json.dumps(cursor, sort_keys=True))
    return SensorResult(run_requests=requests,
                        dynamic_partitions_requests=[annotation_batches.build_add_request(new_keys)] if new_keys else [],
                        cursor=json.dumps(cursor, sort_keys=True))
