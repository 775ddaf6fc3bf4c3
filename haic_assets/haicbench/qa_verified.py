"""qa_verified: reviewers' decisions applied to one batch's QA (two distinct approvals, or a correction).

The review sheet is `annotations/<batch>/reviews.csv` (see samples/haicbench/README.md). Reviewers
see qa_pairs' options in their shuffled order; a corrected answer refers to that order, or to the
corrected options when those are given.
"""

import pandas as pd
from dagster import AssetExecutionContext, Config, Failure, Output, asset
from pydantic import Field

from haic_core.haicbench.qa_parsing import QA
from haic_core.haicbench.qa_verification import reviews_from_records, verify_qas
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.haicbench.bench_captions import annotation_dir
from haic_assets.platform.ledger import preview, record_decisions
from haic_assets.platform.partitions import annotation_batches
from haic_assets.platform.settings import setting, stage_code_version

STAGE = "qa_verified"
REVIEWS_FILE = "reviews.csv"
VERIFIED_COLUMNS = ["qa_id", "clip_id", "video_id", "category", "question", "options", "answer_index", "model",
                    "prompt_version", "subject_count", "review", "corrected", "batch"]


class QAVerifiedConfig(Config):
    required_approvals: int = Field(default=setting(STAGE, "required_approvals", 2),
                                    description="distinct reviewers who must approve an uncorrected QA (paper: 2)")


@asset(
    partitions_def=annotation_batches,
    io_manager_key="tables",
    group_name="haicbench",
    code_version=stage_code_version(STAGE, QAVerifiedConfig),
    description="QA of one batch that reviewers approved (two distinct approvals) or corrected, from "
                "annotations/<batch>/reviews.csv; rejected and under-reviewed QA are in the ledger with the reason.",
)
def qa_verified(context: AssetExecutionContext, config: QAVerifiedConfig, qa_pairs: pd.DataFrame,
                storage: StorageResource, warehouse: WarehouseResource) -> Output[pd.DataFrame]:
    path = annotation_dir(storage, context.partition_key) / REVIEWS_FILE
    if not path.is_file():
        raise Failure(description=f"annotation batch {context.partition_key!r} has no review sheet yet: {path}")
    try:
        reviews = reviews_from_records(pd.read_csv(path, dtype=str).to_dict("records"))
    except (ValueError, KeyError) as exc:
        raise Failure(description=f"{path}: {exc}") from exc
    qas = [QA(r.qa_id, r.clip_id, r.category, r.question, tuple(r.options), int(r.answer_index), r.model,
              r.prompt_version) for r in qa_pairs.itertuples(index=False)]
    subject_counts = {r.clip_id: int(r.subject_count) for r in qa_pairs.itertuples(index=False)
                      if not pd.isna(r.subject_count)}
    verified, decisions = verify_qas(qas, reviews, required_approvals=config.required_approvals,
                                     subject_counts=subject_counts)
    reasons = {d.item_id: d.reason for d in decisions if d.verdict == "kept"}
    context_of = qa_pairs.set_index("qa_id")[["video_id", "subject_count"]].to_dict("index")
    rows = [{**qa.as_record(), **context_of[qa.qa_id], "review": reasons[qa.qa_id],
             "corrected": reasons[qa.qa_id].startswith("corrected"), "batch": context.partition_key}
            for qa in verified]
    table = pd.DataFrame(rows, columns=VERIFIED_COLUMNS).astype({"subject_count": "Int64"})
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(rows=len(table), reviews=len(reviews), corrected=int(table["corrected"].sum()),
                    preview=preview(table, ["clip_id", "category", "question", "review"]))
    return Output(table, metadata=metadata)
