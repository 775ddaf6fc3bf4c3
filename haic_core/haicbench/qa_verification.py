"""Human review of generated QA: what enters the benchmark pool, and why the rest does not.

The paper has every QA checked by two annotators and corrected where wrong. Our rule:
- a QA with any `reject` is out (a question one reviewer finds unanswerable does not belong in
  a benchmark, even if another reviewer tried to fix it);
- otherwise a `correct` review makes the QA enter in its corrected form (the last correction in
  review order wins); the correction must obey the same rules as generated QA;
- otherwise the QA needs approvals from `required_approvals` (2) distinct reviewers.
The corrected QA keeps its original `qa_id`, so its lineage (generation, parse, review) stays
one chain; the decision's detail records what changed.

Pure: no I/O, no Dagster.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Iterable, Literal, Mapping, Sequence

import pandas as pd

from haic_core.decisions import Decision, dropped, error, kept
from haic_core.haicbench.qa import ITEM_KIND, OPTION_LETTERS, QA, make_qa_id, rule_violation

ReviewDecision = Literal["approve", "correct", "reject"]
REVIEW_DECISIONS: tuple[str, ...] = ("approve", "correct", "reject")
VERIFIED_COLUMNS = ["qa_id", "clip_id", "video_id", "category", "question", "options", "answer_index", "model",
                    "prompt_version", "subject_count", "review", "corrected", "batch"]


@dataclass(frozen=True)
class Review:
    """One reviewer's decision on one QA. For `correct`, any of the corrected fields may be
    given; missing ones keep the original (answer_index is 0-based and refers to the
    corrected options when those are given)."""

    qa_id: str
    reviewer_id: str
    decision: ReviewDecision
    question: str | None = None
    options: tuple[str, ...] | None = None
    answer_index: int | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.decision not in REVIEW_DECISIONS:
            raise ValueError(f"review decision must be one of {REVIEW_DECISIONS}, got {self.decision!r}")
        if not self.reviewer_id:
            raise ValueError("a review needs a reviewer id")
        if self.decision == "correct" and self.question is None and self.options is None and self.answer_index is None:
            raise ValueError(f"correction of {self.qa_id} by {self.reviewer_id} changes nothing")


def verify_qas(
    qas: Sequence[QA],
    reviews: Iterable[Review],
    *,
    required_approvals: int = 2,
    subject_counts: Mapping[str, int] | None = None,
) -> tuple[list[QA], list[Decision]]:
    """Apply reviews to generated QAs.

    Returns the verified QAs (original or corrected, in input order) and one Decision per QA
    (kept or dropped, item_kind 'qa', parent_id the clip), plus an `error` Decision for each
    review that names an unknown QA. `subject_counts` (clip_id -> subjects in its caption)
    lets corrections be checked against the single-subject interaction rule.
    """
    by_qa: dict[str, list[Review]] = {qa.qa_id: [] for qa in qas}
    decisions: list[Decision] = []
    for review in reviews:
        if review.qa_id not in by_qa:
            decisions.append(error(review.qa_id, f"review by {review.reviewer_id} names an unknown QA",
                                   item_kind=ITEM_KIND, detail={"reviewer_id": review.reviewer_id}))
            continue
        by_qa[review.qa_id].append(review)

    verified: list[QA] = []
    for qa in qas:
        qa_reviews = by_qa[qa.qa_id]
        detail: dict[str, Any] = {"category": qa.category, "reviews": [(r.reviewer_id, r.decision) for r in qa_reviews]}
        rejecters = sorted({r.reviewer_id for r in qa_reviews if r.decision == "reject"})
        corrections = [r for r in qa_reviews if r.decision == "correct"]
        approvers = sorted({r.reviewer_id for r in qa_reviews if r.decision == "approve"})
        common = {"item_kind": ITEM_KIND, "parent_id": qa.clip_id}
        if rejecters:
            notes = [r.note for r in qa_reviews if r.decision == "reject" and r.note]
            why = f": {'; '.join(notes)}" if notes else ""
            decisions.append(dropped(qa.qa_id, f"rejected by reviewer {', '.join(rejecters)}{why}",
                                     **common, detail={**detail, "notes": notes}))
            continue
        if corrections:
            correction = corrections[-1]
            corrected = _apply_correction(qa, correction)
            subject_count = (subject_counts or {}).get(qa.clip_id)
            violation = rule_violation(corrected.category, corrected.question, corrected.options,
                                       corrected.answer_index, subject_count)
            if violation:
                reason, metric, value, threshold = violation
                decisions.append(dropped(qa.qa_id, f"correction by {correction.reviewer_id} breaks a rule: {reason}",
                                         metric=metric, value=value, threshold=threshold, **common, detail=detail))
                continue
            verified.append(corrected)
            why = f": {correction.note}" if correction.note else ""
            decisions.append(kept(qa.qa_id, f"corrected by reviewer {correction.reviewer_id}{why}", **common,
                                  detail={**detail, "original": qa.as_record(), "corrected": corrected.as_record(),
                                          "approved_by": approvers}))
            continue
        if len(approvers) >= required_approvals:
            verified.append(qa)
            decisions.append(kept(qa.qa_id, f"approved by {len(approvers)} reviewers ({', '.join(approvers)})",
                                  metric="approvals",
                                  value=float(len(approvers)), threshold=float(required_approvals),
                                  **common, detail=detail))
            continue
        decisions.append(dropped(qa.qa_id, f"insufficient approvals: {len(approvers)} of {required_approvals}",
                                 metric="approvals", value=float(len(approvers)),
                                 threshold=float(required_approvals), **common, detail=detail))
    return verified, decisions


def verified_table(qa_pairs: pd.DataFrame, reviews: Iterable[Review], *, required_approvals: int,
                   batch: str) -> tuple[pd.DataFrame, list[Decision]]:
    """`verify_qas` on one batch's qa_pairs table: the verified QA (VERIFIED_COLUMNS, with the
    review's reason and whether it was corrected) and the decisions."""
    records = qa_pairs.to_dict("records")
    subject_counts = {r["clip_id"]: int(r["subject_count"]) for r in records if not pd.isna(r["subject_count"])}
    verified, decisions = verify_qas([QA.from_record(r) for r in records], reviews,
                                     required_approvals=required_approvals, subject_counts=subject_counts)
    reasons = {d.item_id: d.reason for d in decisions if d.verdict == "kept"}
    context_of = qa_pairs.set_index("qa_id")[["video_id", "subject_count"]].to_dict("index")
    rows = [{**qa.as_record(), **context_of[qa.qa_id], "review": reasons[qa.qa_id],
             "corrected": reasons[qa.qa_id].startswith("corrected"), "batch": batch}
            for qa in verified]
    return pd.DataFrame(rows, columns=VERIFIED_COLUMNS).astype({"subject_count": "Int64"}), decisions


def _apply_correction(qa: QA, review: Review) -> QA:
    options = tuple(review.options) if review.options is not None else qa.options
    if review.answer_index is not None:
        answer_index = review.answer_index
    elif review.options is not None:
        # New options without a new answer: keep the correct text if it is still there.
        correct_text = qa.options[qa.answer_index]
        answer_index = options.index(correct_text) if correct_text in options else -1
    else:
        answer_index = qa.answer_index
    return replace(qa, question=review.question if review.question is not None else qa.question,
                   options=options, answer_index=answer_index)


# ---------------------------------------------------------------------------------------------
# Import of review sheets


def _answer_from_cell(value: Any) -> int | None:
    """A corrected answer written as a letter (A-E) or a 1-based option number."""
    if value is None or (isinstance(value, float) and value != value) or str(value).strip() == "":
        return None
    text = str(value).strip().strip("().").upper()
    if text in OPTION_LETTERS and len(text) == 1:
        return OPTION_LETTERS.index(text)
    if text.replace(".0", "").isdigit():
        return int(text.replace(".0", "")) - 1
    raise ValueError(f"corrected answer {value!r} is neither a letter A-E nor an option number")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or str(value).strip() == ""


def reviews_from_records(records: Iterable[Mapping[str, Any]]) -> list[Review]:
    """Reviews from sheet rows (e.g. `pd.read_csv(...).to_dict("records")`).

    A row names its QA either by `qa_id` or by (`clip_id`, `category`, `question`) exactly as
    generated, which is what a reviewer sees; the id is then derived as the parser does.
    Columns: reviewer_id, decision, and for corrections optional corrected_question,
    corrected_options (a JSON list), corrected_answer (letter or 1-based number), note.
    """
    reviews: list[Review] = []
    for row_number, row in enumerate(records, start=1):
        qa_id = row.get("qa_id")
        if _blank(qa_id):
            if any(_blank(row.get(k)) for k in ("clip_id", "category", "question")):
                raise ValueError(f"review row {row_number} names no QA: give qa_id or clip_id, category and question")
            qa_id = make_qa_id(str(row["clip_id"]), str(row["category"]), str(row["question"]))
        options_cell = row.get("corrected_options")
        options = None if _blank(options_cell) else tuple(str(o) for o in json.loads(str(options_cell)))
        question_cell = row.get("corrected_question")
        reviews.append(Review(
            qa_id=str(qa_id),
            reviewer_id=str(row.get("reviewer_id") or "").strip(),
            decision=str(row.get("decision") or "").strip().lower(),  # type: ignore[arg-type]
            question=None if _blank(question_cell) else " ".join(str(question_cell).split()),
            options=options,
            answer_index=_answer_from_cell(row.get("corrected_answer")),
            note="" if _blank(row.get("note")) else str(row.get("note")),
        ))
    return reviews
