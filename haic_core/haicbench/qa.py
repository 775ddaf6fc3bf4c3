"""What a HAICBench QA is: the five categories and their rules (the paper, section 3), the normalized
record, its deterministic id, and the rule check that generated and corrected QA must pass.

Pure: no I/O, no Dagster.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Mapping, Sequence

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

    @property
    def answer_text(self) -> str:
        return self.options[self.answer_index]

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
# The paper's sequence questions: "What does <person> do immediately after / just before <action>?"
_SEQUENCE_PHRASING = re.compile(r"^\s*what\b.*\b(?:immediately|just|right)\s+(?:after|before)\b", re.I | re.S)

# The soft rules (the paper's prompts ask for them, the paper's own examples break some): each is
# measured on every QA and only flags it, unless a deployment sets the rule to "reject".
SOFT_RULES: tuple[str, ...] = (
    "option_words",          # longest option, in words, against the limit (15)
    "option_length_ratio",   # longest / shortest option in words: similar lengths do not give the answer away
    "before_after",          # action details: "before"/"after" words in the question and options (limit 0)
    "sequence_phrasing",     # action sequence: "What does ... do immediately after / just before ..." (1 = yes)
    "count_phrasing",        # count: the question starts with "How many" (1 = yes)
    "numbered_subject",      # "Subject 2", "person 1" in the question or options (limit 0)
)
Strictness = Literal["flag", "reject"]


@dataclass(frozen=True)
class QARules:
    """The soft rules' limits and, per rule, whether breaking it flags the QA or rejects it."""

    max_option_words: int = MAX_OPTION_WORDS
    max_option_length_ratio: float = 3.0
    strictness: Mapping[str, Strictness] = field(default_factory=dict)  # rule -> "flag" | "reject"; absent: flag

    def __post_init__(self) -> None:
        unknown = sorted(set(self.strictness) - set(SOFT_RULES))
        if unknown:
            raise ValueError(f"unknown QA rules {unknown}; expected some of {list(SOFT_RULES)}")
        bad = sorted(r for r, s in self.strictness.items() if s not in ("flag", "reject"))
        if bad:
            raise ValueError(f"QA rule strictness must be 'flag' or 'reject': {bad}")

    def rejects(self, rule: str) -> bool:
        return self.strictness.get(rule, "flag") == "reject"


@dataclass(frozen=True)
class RuleMeasure:
    """One soft rule measured on one QA: the value, its limit, and whether it is broken."""

    rule: str
    value: float
    limit: float
    broken: bool
    note: str

    def as_record(self) -> dict[str, Any]:
        return {"rule": self.rule, "value": self.value, "limit": self.limit, "broken": self.broken,
                "note": self.note}


def _texts(question: str, options: Sequence[str]) -> list[tuple[str, str]]:
    return [("question", question), *((f"option {i}", o) for i, o in enumerate(options, start=1))]


def measure_rules(category: str, question: str, options: Sequence[str], rules: QARules = QARules()) -> list[RuleMeasure]:
    """Every soft rule that applies to this category, measured (value and limit) on this QA."""
    words = [len(o.split()) for o in options] or [0]
    longest = max(range(len(words)), key=lambda i: words[i])
    measures = [RuleMeasure("option_words", float(words[longest]), float(rules.max_option_words),
                            words[longest] > rules.max_option_words,
                            f"option {longest + 1} has {words[longest]} words")]
    ratio = max(words) / max(1, min(words))
    measures.append(RuleMeasure("option_length_ratio", round(ratio, 3), rules.max_option_length_ratio,
                                ratio > rules.max_option_length_ratio,
                                f"options have {min(words)} to {max(words)} words"))
    numbered = [(where, m.group(0)) for where, text in _texts(question, options)
                for m in _NUMBERED_SUBJECT.finditer(text)]
    measures.append(RuleMeasure("numbered_subject", float(len(numbered)), 0.0, bool(numbered),
                                f"{numbered[0][1]!r} in {numbered[0][0]}" if numbered else "people named by attributes"))
    if category == "action_details":
        found = [(where, m.group(1).lower()) for where, text in _texts(question, options)
                 for m in _BEFORE_AFTER.finditer(text)]
        measures.append(RuleMeasure("before_after", float(len(found)), 0.0, bool(found),
                                    f"{found[0][1]!r} in {found[0][0]}" if found else "no before/after wording"))
    if category == "action_sequence":
        ok = bool(_SEQUENCE_PHRASING.search(question))
        measures.append(RuleMeasure("sequence_phrasing", float(ok), 1.0, not ok,
                                    "asks what happens immediately after / just before" if ok else
                                    "question is not 'What does ... do immediately after / just before ...'"))
    if category == "count":
        ok = question.strip().lower().startswith("how many")
        measures.append(RuleMeasure("count_phrasing", float(ok), 1.0, not ok,
                                    "starts with 'How many'" if ok else "question does not start with 'How many'"))
    return measures


def structural_fault(category: str, question: str, options: Sequence[str], answer_index: int | None,
                     subject_count: int | None = None) -> tuple[str, str | None, float | None, float | None] | None:
    """The first fault that makes a QA unusable as (reason, metric, value, threshold), or None.
    These always reject, whatever the soft rules' strictness."""
    rule = CATEGORY_RULES[category]
    if not question.strip():
        return ("empty question", None, None, None)
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
        if not option.strip():
            return (f"empty option: option {position}", None, None, None)
    seen: set[str] = set()
    for option in options:
        if normalized_option(option) in seen:
            return (f"duplicate options: {option.strip()!r}", None, None, None)
        seen.add(normalized_option(option))
    return None


def rule_reason(measure: RuleMeasure) -> str:
    """A broken soft rule as a ledger reason."""
    return {
        "option_words": f"option over {int(measure.limit)} words: {measure.note}",
        "option_length_ratio": f"option lengths differ: {measure.note} (ratio {measure.value:g} > {measure.limit:g})",
        "before_after": f"before/after wording in action details: {measure.note}",
        "sequence_phrasing": f"sequence question phrasing: {measure.note}",
        "count_phrasing": "count question does not start with 'How many'",
        "numbered_subject": f"numbered subject naming: {measure.note}",
    }[measure.rule]


def rule_violation(category: str, question: str, options: list[str] | tuple[str, ...], answer_index: int | None,
                   subject_count: int | None = None,
                   rules: QARules = QARules()) -> tuple[str, str | None, float | None, float | None] | None:
    """The first reason this QA is rejected as (reason, metric, value, threshold), or None: a
    structural fault, else a broken soft rule that `rules` sets to "reject".

    Shared by generated QA (qa_parsing) and reviewers' corrections (qa_verification)."""
    fault = structural_fault(category, question, options, answer_index, subject_count)
    if fault:
        return fault
    for measure in measure_rules(category, question, options, rules):
        if measure.broken and rules.rejects(measure.rule):
            return (rule_reason(measure), measure.rule, measure.value, measure.limit)
    return None
