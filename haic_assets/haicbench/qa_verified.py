"""qa_verified: reviewers' decisions applied to one batch's QA (two distinct approvals, or a correction).

The review sheet is `annotations/<batch>/reviews.csv` (see samples/haicbench/README.md). Reviewers
see qa_pairs' options in their shuffled order; a corrected answer refers to that order, or to the
corrected options when those are given.
"""

import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.haicbench.annotations import REVIEWS_FILE, read_reviews
from haic_core.haicbench.qa_verification import verified_table
from haic_assets.platform.partitions import annotation_batches
from haic_assets.haicbench.qa_pairs import QA_COLUMN_DOCS
from haic_platform.stage import StageContext, StageFailure, StageResult, partitioned_stage

VERIFIED_COLUMN_DOCS = {
    **QA_COLUMN_DOCS,
    "review": "why it entered: approved by which reviewers, or corrected by whom (and their note)",
    "corrected": "a reviewer corrected the QA (the corrected version is this row)",
    "batch": "the annotation batch the QA was reviewed in",
}


class QAVerifiedConfig(Config):
    required_approvals: int = Field(default=2, ge=0, description="distinct reviewers who must approve an uncorrected QA "
                                                           "(paper: 2)")


@partitioned_stage("qa_verified", QAVerifiedConfig, ins=("qa_pairs",), partitions=annotation_batches,
                   column_docs=VERIFIED_COLUMN_DOCS)
def qa_verified(stage: StageContext, config: QAVerifiedConfig, qa_pairs: pd.DataFrame) -> StageResult:
    """QA of one batch that reviewers approved (two distinct approvals) or corrected, from
    annotations/<batch>/reviews.csv; rejected and under-reviewed QA are in the ledger with the reason."""
    annotations, key = stage.storage.annotations(), f"{stage.partition_key}/{REVIEWS_FILE}"
    sheet = annotations.get_bytes(key)
    if sheet is None:
        raise StageFailure(f"annotation batch {stage.partition_key!r} has no review sheet yet: {annotations.uri}/{key}")
    try:
        reviews = read_reviews(sheet)
    except (ValueError, KeyError) as exc:
        raise StageFailure(f"{annotations.uri}/{key}: {exc}") from exc
    table, decisions = verified_table(qa_pairs, reviews, required_approvals=config.required_approvals,
                                      batch=stage.partition_key)
    return StageResult(table, decisions, metadata={"reviews": len(reviews), "corrected": int(table["corrected"].sum())},
                       preview=["clip_id", "category", "question", "review"])
