"""Turn what an LLM wrote for one (caption, category) into checked HAICBench QA records.

Models answer a "JSON only" prompt in many shapes, and the HAIC paper's own prompts ask for
several: a list of objects with `opt1` ... `optN` and a 1-based `answer` behind an `answer:`
prefix, two such lists separated by a comma, one object with `candidates` and a letter `answer`
written as single-quoted pseudo-JSON inside a fence (sometimes a fence inside a fence), and the
sentence `No subject interaction.` when a caption has one person. Others write `options` or
`choices` lists, `A` ... `E` keys, trailing commas, comments or smart quotes. Every one of these
is read into one schema (`QA`: question, options, 0-based answer index; the answer's text is
`QA.answer_text`); broken syntax is mended by json-repair, not by more regexes of ours.

What breaks a structural rule (option count, answer range, duplicate options, empty question)
is a dropped `Decision` with a reason. The paper's soft rules (option length, before/after,
phrasing, "Subject N") are measured on every QA (`RuleMeasure`) and flag it, or reject it where
`QARules` says so.

Pure: no I/O, no Dagster.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import json_repair

from haic_core.decisions import Decision, dropped
from haic_core.haicbench.qa import (CATEGORIES, CATEGORY_RULES, ITEM_KIND, OPTION_LETTERS, QA, QARules, RuleMeasure,
                                    make_qa_id, measure_rules, normalized_option, rule_reason, structural_fault)

# Zero QA on purpose: the answer was read, and says there is nothing to ask.
NO_INTERACTION_REASON = "no interaction: single subject"
EMPTY_ANSWER_REASON = "no questions: the answer is an empty list"
ZERO_QA_REASONS = (NO_INTERACTION_REASON, EMPTY_ANSWER_REASON)
UNPARSEABLE_REASON = "unparseable response: no JSON list or object found"

_NO_INTERACTION = re.compile(r"\bno\s+subjects?\s+interactions?\b", re.I)


# ---------------------------------------------------------------------------------------------
# Finding the structured values in free text


_FENCE_MARK = re.compile(r"```[A-Za-z0-9_-]*")
_SMART_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',
                               "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'"})
# An apostrophe inside a word (the man's, don't) is not a quote, even in single-quoted pseudo-JSON;
# it is hidden from the bracket scanner and from json-repair as a private character.
_IN_WORD_APOSTROPHE = re.compile(r"(?<=[A-Za-z])'(?=[A-Za-z])")
_HIDDEN_APOSTROPHE = "\ue000"


def _balanced_span_end(text: str, start: int) -> int | None:
    """Index just past the bracket that closes text[start], honouring both quote styles."""
    closing = {"[": "]", "{": "}"}
    stack: list[str] = []
    quote: str | None = None
    i = start
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 2
                continue
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch in closing:
            stack.append(closing[ch])
        elif ch in "]}":
            if not stack or stack.pop() != ch:
                return None
            if not stack:
                return i + 1
        i += 1
    return None


def _restore_apostrophes(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace(_HIDDEN_APOSTROPHE, "'")
    if isinstance(value, list):
        return [_restore_apostrophes(v) for v in value]
    if isinstance(value, dict):
        return {_restore_apostrophes(k): _restore_apostrophes(v) for k, v in value.items()}
    return value


def _parse_span(span: str) -> Any:
    """Strict JSON first; else json-repair (single quotes, trailing commas, comments, bare words,
    a truncated end)."""
    try:
        value = json.loads(span)
    except ValueError:
        value = json_repair.loads(span)
    return _restore_apostrophes(value)


def _structured_values(segment: str) -> list[Any]:
    """Every top-level list or object in `segment`, in order; an unclosed one runs to the end."""
    values: list[Any] = []
    pos = 0
    while True:
        starts = [i for i in (segment.find("[", pos), segment.find("{", pos)) if i >= 0]
        if not starts:
            return values
        start = min(starts)
        end = _balanced_span_end(segment, start)
        span = segment[start:end] if end is not None else segment[start:]
        try:
            values.append(_parse_span(span))
        except (ValueError, TypeError, RecursionError):
            pass
        if end is None:
            return values
        pos = end


def _question_items(value: Any) -> list[Any]:
    """Objects that hold a question, from lists of lists and wrappers ({"questions": [...]},
    {"answer": [...]}); anything without an object (a bracketed word in prose) gives none."""
    if isinstance(value, (list, tuple)):
        return [item for element in value for item in _question_items(element)]
    if isinstance(value, dict):
        keys = {str(k).strip().lower() for k in value}
        if keys & {"question", "q"}:
            return [value]
        return [item for v in value.values() if isinstance(v, (list, tuple, dict)) for item in _question_items(v)]
    return []


def _prepared(raw_text: str) -> str:
    return _IN_WORD_APOSTROPHE.sub(_HIDDEN_APOSTROPHE, raw_text.translate(_SMART_QUOTES))


def extract_question_items(raw_text: str) -> list[dict[str, Any]]:
    """All question objects in an LLM response (possibly none). Fence marks, at any depth, only
    separate segments; each segment is scanned for lists and objects."""
    items: list[dict[str, Any]] = []
    for segment in _FENCE_MARK.split(_prepared(raw_text)):
        for value in _structured_values(segment):
            items.extend(_question_items(value))
    return items


def _is_empty_list_answer(raw_text: str) -> bool:
    values = [v for segment in _FENCE_MARK.split(_prepared(raw_text)) for v in _structured_values(segment)]
    return bool(values) and all(v == [] for v in values)


# ---------------------------------------------------------------------------------------------
# Normalizing one item


_OPTION_LABEL = re.compile(r"^\s*\(?([A-Ea-e]|[1-5])\s*[\).:]\s*")
_ANSWER_NUMBER = re.compile(r"^\s*(?:(?:option|opt|choice)\s*[_#]?\s*)?\(?\s*(\d+)\s*\)?\s*(?:[.):]|\s|$)", re.I)
_ANSWER_LETTER = re.compile(r"^\s*(?:(?:option|choice)\s*)?\(?\s*([A-Ea-e])\s*\)?\s*(?:[.):]|\s|$)", re.I)
_NUMBERED_OPTION_KEY = re.compile(r"^(?:opt|option|choice|candidate)[\s_-]*(\d+)$")
_LIST_KEYS = ("options", "choices", "candidates", "answers", "option_list")
_ANSWER_KEYS = ("answer", "correct_answer", "correct_option", "correct", "solution", "label")


def _label_position(label: str) -> int:
    return int(label) - 1 if label.isdigit() else OPTION_LETTERS.index(label.upper())


def _strip_option_labels(options: list[str]) -> list[str]:
    """Drop "A. " / "(B) " / "3) " only when every option carries the label of its position,
    so an option that merely starts with the article "A" keeps its text."""
    matches = [_OPTION_LABEL.match(option) for option in options]
    if all(m is not None and _label_position(m.group(1)) == i for i, m in enumerate(matches)):
        return [option[m.end() :].strip() for option, m in zip(options, matches)]
    return [option.strip() for option in options]


def _option_text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (str, int, float)):
        return " ".join(str(value).split())
    if isinstance(value, dict):  # {"label": "A", "text": "..."}
        for key in ("text", "option", "content", "value"):
            if key in value:
                return _option_text(value[key])
    return None


def _options_of(item: Mapping[str, Any]) -> list[str] | None:
    """The options in whichever shape the item gives them, in their order; None if none."""
    lowered = {str(k).strip().lower(): v for k, v in item.items()}
    for key in _LIST_KEYS:
        value = lowered.get(key)
        if isinstance(value, dict):  # {"A": "...", "B": "..."} or {"1": ...}
            value = [v for _, v in sorted(value.items(), key=lambda kv: _key_order(str(kv[0])))]
        if isinstance(value, (list, tuple)):
            texts = [_option_text(v) for v in value]
            if texts and all(t is not None for t in texts):
                return _strip_option_labels(texts)  # type: ignore[arg-type]
    numbered = sorted((int(m.group(1)), v) for k, v in lowered.items() if (m := _NUMBERED_OPTION_KEY.match(k)))
    if numbered:
        return [_option_text(v) or "" for _, v in numbered]
    lettered = sorted((k, v) for k, v in lowered.items() if len(k) == 1 and k.upper() in OPTION_LETTERS)
    if lettered:
        return [_option_text(v) or "" for _, v in lettered]
    return None


def _key_order(key: str) -> tuple[int, str]:
    digits = re.sub(r"\D", "", key)
    return (int(digits), key) if digits else (0, key.lower())


def _answer_position(answer: Any, options: list[str]) -> int | None:
    """0-based position the answer names: a 1-based number, a letter ('B', '(B)', 'B.'), or the
    option's text; None if not recognisable. Out-of-range numbers and letters are returned as
    such (the caller rejects them)."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, int):
        return answer - 1
    if isinstance(answer, float) and answer.is_integer():
        return int(answer) - 1
    if isinstance(answer, (list, tuple)) and len(answer) == 1:
        return _answer_position(answer[0], options)
    if not isinstance(answer, str):
        return None
    text = answer.strip()
    by_text = [i for i, option in enumerate(options) if normalized_option(option) == normalized_option(text)]
    if text.isdigit():
        # The prompts ask for the option number, so it wins over options that are numbers too,
        # unless no option has that number and one has that text (a count answered by its value).
        number = int(text)
        return number - 1 if 1 <= number <= len(options) or not by_text else by_text[0]
    if by_text:
        return by_text[0]
    match = _ANSWER_NUMBER.match(text)
    if match:
        return int(match.group(1)) - 1
    match = _ANSWER_LETTER.match(text)
    if match:
        return OPTION_LETTERS.index(match.group(1).upper())
    # "B. the man waves" where the text after the label is an option.
    stripped = _OPTION_LABEL.sub("", text, count=1)
    by_text = [i for i, option in enumerate(options) if normalized_option(option) == normalized_option(stripped)]
    return by_text[0] if by_text else None


def _field(item: Mapping[str, Any], *names: str) -> Any:
    lowered = {str(k).strip().lower(): v for k, v in item.items()}
    for name in names:
        if name in lowered:
            return lowered[name]
    return None


# ---------------------------------------------------------------------------------------------
# The entry points


@dataclass(frozen=True)
class ParsedQA:
    """An accepted QA with every soft rule measured on it; `flags` are the broken ones."""

    qa: QA
    measures: tuple[RuleMeasure, ...]

    @property
    def flags(self) -> tuple[str, ...]:
        return tuple(m.rule for m in self.measures if m.broken)


@dataclass(frozen=True)
class QAReading:
    """What one raw answer gave: accepted QAs, and a dropped decision per rejected question (or
    one for the whole response: unparseable, or zero QA on purpose)."""

    accepted: list[ParsedQA] = field(default_factory=list)
    rejections: list[Decision] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """kept: some QA; dropped: zero QA for a recorded reason (the answer says there is
        nothing to ask); rejected: nothing usable."""
        if self.accepted:
            return "kept"
        if len(self.rejections) == 1 and self.rejections[0].reason in ZERO_QA_REASONS:
            return "dropped"
        return "rejected"


def read_qa_answer(
    raw_text: str,
    *,
    clip_id: str,
    category: str,
    model: str,
    prompt_version: str,
    subject_count: int | None = None,
    rules: QARules = QARules(),
) -> QAReading:
    """Read one LLM response for one caption and category.

    Accepts at most the category's allowance of questions, in the order written; the allowance
    counts accepted questions only (a broken first question does not use a slot).
    `subject_count` (see `haic_core.haic_train.caption_format.declared_subject_count`) enables the
    single-subject rule.
    """
    if category not in CATEGORY_RULES:
        raise ValueError(f"unknown QA category {category!r}; expected one of {CATEGORIES}")
    allowance = CATEGORY_RULES[category].max_questions
    base_detail = {"category": category, "model": model, "prompt_version": prompt_version}
    text = raw_text or ""

    def reject(item_id: str, reason: str, metric=None, value=None, threshold=None, **detail: Any) -> Decision:
        return dropped(
            item_id, reason, item_kind=ITEM_KIND, parent_id=clip_id,
            metric=metric, value=value, threshold=threshold, detail={**base_detail, **detail},
        )

    response_id = f"{clip_id}:{category}:response"
    items = extract_question_items(text)
    if not items:
        if category == "interaction" and _NO_INTERACTION.search(text):
            return QAReading([], [reject(response_id, NO_INTERACTION_REASON, "subject_count", 1.0, 2.0)])
        if _is_empty_list_answer(text):
            return QAReading([], [reject(response_id, EMPTY_ANSWER_REASON)])
        return QAReading([], [reject(response_id, UNPARSEABLE_REASON, raw_excerpt=text[:200])])

    accepted: list[ParsedQA] = []
    rejections: list[Decision] = []
    seen_ids: set[str] = set()
    for position, item in enumerate(items, start=1):
        question_value = _field(item, "question", "q")
        question = " ".join(str(question_value).split()) if question_value is not None else ""
        if not question:
            rejections.append(reject(f"{clip_id}:{category}:item{position}", "empty question", item_position=position))
            continue
        qa_id = make_qa_id(clip_id, category, question)
        options = _options_of(item)
        if options is None:
            rejections.append(reject(qa_id, "missing options", question=question))
            continue
        answer_value = _field(item, *_ANSWER_KEYS)
        if answer_value is None:
            rejections.append(reject(qa_id, "missing answer", question=question))
            continue
        answer_index = _answer_position(answer_value, options)
        if answer_index is None:
            rejections.append(reject(qa_id, f"answer not recognised: {answer_value!r}", question=question))
            continue
        if qa_id in seen_ids:
            rejections.append(reject(qa_id, "duplicate question in the same response", question=question))
            continue
        fault = structural_fault(category, question, options, answer_index, subject_count)
        if fault:
            reason, metric, value, threshold = fault
            rejections.append(reject(qa_id, reason, metric, value, threshold, question=question))
            continue
        measures = tuple(measure_rules(category, question, options, rules))
        refused = [m for m in measures if m.broken and rules.rejects(m.rule)]
        if refused:
            rejections.append(reject(qa_id, rule_reason(refused[0]), refused[0].rule, refused[0].value,
                                     refused[0].limit, question=question,
                                     rules=[m.as_record() for m in measures]))
            continue
        if len(accepted) >= allowance:
            rejections.append(reject(
                qa_id,
                f"more questions than {category} allows: {allowance} per caption",
                "question_position", float(len(accepted) + 1), float(allowance), question=question,
            ))
            continue
        seen_ids.add(qa_id)
        qa = QA(qa_id, clip_id, category, question, tuple(options), answer_index, model, prompt_version)
        accepted.append(ParsedQA(qa, measures))
    return QAReading(accepted, rejections)


def parse_qa_response(raw_text: str, *, clip_id: str, category: str, model: str, prompt_version: str,
                      subject_count: int | None = None, rules: QARules = QARules()) -> tuple[list[QA], list[Decision]]:
    """`read_qa_answer` as (accepted QAs, dropped decisions), for callers that need no rule measures."""
    reading = read_qa_answer(raw_text, clip_id=clip_id, category=category, model=model,
                             prompt_version=prompt_version, subject_count=subject_count, rules=rules)
    return [parsed.qa for parsed in reading.accepted], reading.rejections
