"""What a HAICBench QA is: the five categories and their rules (the paper, section 3), the normalized
record, its deterministic id, and the rule check that generated and corrected QA must pass.

Pure: no I/O, no Dagster.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass
from typing import Any, Literal, Mapping

CATEGORIES: tuple[str, ...] = (
    "interaction",
    "action_details",
    "action_sequence",
    "count",
    "attribute",
)

MAX_OPTION_WORDS = 15
OPTION_LETTERS = "ABCDE"
ITEM_KIND = "qa"  # the ledger's item kind of a question


@dataclass(frozen=True)
class CategoryRule:
    """What the paper asks of one category (the paper's table of categories)."""

    max_questions: int
    n_options: int
    answer_given_as: Literal["letter", "number"]


CATEGORY_RULES: Mapping[str, CategoryRule] = {
    "interaction": CategoryRule(max_questions=1, n_options=4, answer_given_as="letter"),
    "action_details": CategoryRule(max_questions=2, n_options=4, answer_given_as="number"),
    "action_sequence": CategoryRule(max_questions=2, n_options=5, answer_given_as="number"),
    "count": CategoryRule(max_questions=3, n_options=5, answer_given_as="number"),
    "attribute": CategoryRule(max_questions=1, n_options=4, answer_given_as="letter"),
}


@dataclass(frozen=True)
class QA:
    """One normalized multiple-choice question; `answer_index` is 0-based."""

    qa_id: str
    clip_id: str
    category: str
    question: str
    options: tuple[str, ...]
    answer_index: int
    model: str
    prompt_version: str

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> QA:
        """The QA of a table row (qa_pairs, qa_verified, the split): options as any sequence,
        model and prompt version empty where the table has none."""
        return cls(record["qa_id"], record["clip_id"], record["category"], record["question"],
                   tuple(record["options"]), int(record["answer_index"]), str(record.get("model", "")),
                   str(record.get("prompt_version", "")))

    def as_record(self) -> dict[str, Any]:
        """Plain dict (options as a list) for DataFrames, JSONL and Parquet."""
        record = asdict(self)
        record["options"] = list(self.options)
        return record


def make_qa_id(clip_id: str, category: str, question: str) -> str:
    """Deterministic id: the same question on the same clip is the same QA across runs."""
    key = "\x1f".join((clip_id, category, " ".join(question.split())))
    return "qa_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def normalized_option(text: str) -> str:
    """An option's text as compared: case, spacing and a final full stop do not count."""
    return " ".join(text.lower().split()).rstrip(".")


_NUMBERED_SUBJECT = re.compile(r"\b(?:subject|person|character)\s*#?\s*\d+\b", re.I)
_BEFORE_AFTER = re.compile(r"\b(before|after|afterwards?)\b", re.I)


def rule_violation(category: str, question: str, options: list[str] | tuple[str, ...], answer_index: int | None,
                   subject_count: int | None = None) -> tuple[str, str | None, float | None, float | None] | None:
    """The first rule this QA breaks as (reason, metric, value, threshold), or None.

    Shared by generated QA (qa_parsing) and reviewers' corrections (qa_verification)."""
    rule = CATEGORY_RULES[category]
    if category == "interaction" and subject_count == 1:
        return ("interaction question for a single-subject caption", "subject_count", 1.0, 2.0)
    if len(options) != rule.n_options:
        return (
            f"wrong option count: {len(options)} options, {category} needs {rule.n_options}",
            "option_count", float(len(options)), float(rule.n_options),
        )
    if answer_index is None or not 0 <= answer_index < rule.n_options:
        shown = "missing" if answer_index is None else str(answer_index + 1)
        return (
            f"answer out of range: option {shown} of {rule.n_options}",
            "answer_position", None if answer_index is None else float(answer_index + 1), float(rule.n_options),
        )
    for position, option in enumerate(options, start=1):
        n_words = len(option.split())
        if n_words > MAX_OPTION_WORDS:
            return (
                f"option over {MAX_OPTION_WORDS} words: option {position} has {n_words}",
                "option_words", float(n_words), float(MAX_OPTION_WORDS),
            )
        if not option.strip():
            return (f"empty option: option {position}", None, None, None)
    seen: set[str] = set()
    for option in options:
        if normalized_option(option) in seen:
            return (f"duplicate options: {option.strip()!r}", None, None, None)
        seen.add(normalized_option(option))
    for where, text in [("question", question), *((f"option {i}", o) for i, o in enumerate(options, start=1))]:
        match = _NUMBERED_SUBJECT.search(text)
        if match:
            return (f"numbered subject naming: {match.group(0)!r} in {where}", None, None, None)
    if category == "count" and not question.strip().lower().startswith("how many"):
        return ("count question does not start with 'How many'", None, None, None)
    if category == "action_details":
        for where, text in [("question", question), *((f"option {i}", o) for i, o in enumerate(options, start=1))]:
            match = _BEFORE_AFTER.search(text)
            if match:
                return (f"before/after wording in action details: {match.group(1).lower()!r} in {where}", None, None, None)
    return None
