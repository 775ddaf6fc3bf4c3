"""Turn what an LLM wrote for one (caption, category) into checked HAICBench QA records.

LLMs answer a "JSON only" prompt in many shapes: a JSON list, several lists separated by
commas, a single object, Python-literal pseudo-JSON with single quotes, fenced code blocks,
commentary before or after. Answers come as option numbers (1-based, int or string) or as
letters ("B", "B.", "(B)"); options come as plain strings or as "A. text". All of these are
normalized to `QA` (haic_core.haicbench.qa); whatever breaks the paper's rules (section 3) becomes
a `Decision` with a reason, so "why is this question not in the benchmark?" has an answer.

Pure: no I/O, no Dagster.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any, Mapping

from haic_core.decisions import Decision, dropped
from haic_core.haicbench.qa import (CATEGORIES, CATEGORY_RULES, ITEM_KIND, OPTION_LETTERS, QA, make_qa_id,
                                    normalized_option, rule_violation)
from haic_core.json_text import fenced_blocks


# ---------------------------------------------------------------------------------------------
# Extracting structured values from free text


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
            # An apostrophe inside bare words (it's) is not a quote in pseudo-JSON either.
            if ch == "'" and i > 0 and text[i - 1].isalnum() and i + 1 < len(text) and text[i + 1].isalnum():
                pass
            else:
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


class _JsonishNames(ast.NodeTransformer):
    """Let Python-literal parsing accept JSON's true/false/null as well."""

    _VALUES = {"true": True, "false": False, "null": None, "none": None}

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id.lower() in self._VALUES:
            return ast.copy_location(ast.Constant(self._VALUES[node.id.lower()]), node)
        return node


def _parse_literal(span: str) -> Any:
    """JSON first; then Python-literal syntax (single quotes), which `literal_eval` keeps safe."""
    try:
        return json.loads(span)
    except ValueError:
        pass
    tree = ast.parse(span.strip(), mode="eval")
    return ast.literal_eval(_JsonishNames().visit(tree))


def _structured_values(text: str) -> list[Any]:
    """Every top-level list or object that parses, in order of appearance."""
    values: list[Any] = []
    pos = 0
    while True:
        starts = [i for i in (text.find("[", pos), text.find("{", pos)) if i >= 0]
        if not starts:
            return values
        start = min(starts)
        end = _balanced_span_end(text, start)
        if end is None:
            pos = start + 1
            continue
        try:
            values.append(_parse_literal(text[start:end]))
            pos = end
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            # An outer bracket that does not parse may still hold objects that do.
            pos = start + 1


_QA_CONTAINER_KEYS = ("questions", "qa", "qas", "qa_pairs", "items", "data", "results")


def _question_items(value: Any) -> list[Any]:
    """Flatten lists of lists and {"questions": [...]} wrappers into a list of items."""
    if isinstance(value, (list, tuple)):
        items: list[Any] = []
        for element in value:
            items.extend(_question_items(element))
        return items
    if isinstance(value, dict):
        lowered = {str(k).lower(): v for k, v in value.items()}
        if not any(k in lowered for k in ("question", "q")):
            for key in _QA_CONTAINER_KEYS:
                if isinstance(lowered.get(key), (list, tuple, dict)):
                    return _question_items(lowered[key])
        return [value]
    return [value]


def extract_question_items(raw_text: str) -> list[Any]:
    """All candidate question items in an LLM response (possibly empty)."""
    blocks = fenced_blocks(raw_text)
    sources = blocks if blocks else [raw_text]
    items: list[Any] = []
    for source in sources:
        for value in _structured_values(source):
            items.extend(_question_items(value))
    return items


# ---------------------------------------------------------------------------------------------
# Normalizing one item


_OPTION_LABEL = re.compile(r"^\s*\(?([A-Ea-e]|[1-5])\s*[\).:]\s*")
_ANSWER_NUMBER = re.compile(r"^\s*(?:option\s*)?\(?\s*(\d+)\s*\)?\s*(?:[.):]|\s|$)", re.I)
_ANSWER_LETTER = re.compile(r"^\s*(?:option\s*)?\(?\s*([A-Ea-e])\s*\)?\s*(?:[.):]|\s|$)", re.I)


def _label_position(label: str) -> int:
    return int(label) - 1 if label.isdigit() else OPTION_LETTERS.index(label.upper())


def _strip_option_labels(options: list[str]) -> list[str]:
    """Drop "A. " / "(B) " / "3) " only when every option carries the label of its position,
    so an option that merely starts with the article "A" keeps its text."""
    matches = [_OPTION_LABEL.match(option) for option in options]
    if all(m is not None and _label_position(m.group(1)) == i for i, m in enumerate(matches)):
        return [option[m.end() :].strip() for option, m in zip(options, matches)]
    return [option.strip() for option in options]


def _as_options(value: Any) -> list[str] | None:
    if isinstance(value, dict):
        # {"A": "...", "B": "..."}: the keys are the labels.
        return [str(v).strip() for _, v in sorted(value.items(), key=lambda kv: str(kv[0]))]
    if isinstance(value, (list, tuple)) and all(isinstance(o, (str, int, float)) for o in value):
        return _strip_option_labels([str(o) for o in value])
    return None


def _answer_position(answer: Any, options: list[str]) -> int | None:
    """0-based position the answer names, whatever form it takes; None if not recognisable.

    Out-of-range numbers and letters are returned as such (the caller rejects them)."""
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
# The entry point


def parse_qa_response(
    raw_text: str,
    *,
    clip_id: str,
    category: str,
    model: str,
    prompt_version: str,
    subject_count: int | None = None,
) -> tuple[list[QA], list[Decision]]:
    """Parse one LLM response for one caption and category.

    Returns the accepted QAs (at most the category's allowance, in the order written) and one
    dropped `Decision` (item_kind 'qa', parent_id the clip) per rejected question. The
    allowance counts accepted questions only: a broken first question does not use a slot.
    `subject_count` (see `haic_core.haic_train.caption_format.declared_subject_count`) enables the
    single-subject rule.
    """
    if category not in CATEGORY_RULES:
        raise ValueError(f"unknown QA category {category!r}; expected one of {CATEGORIES}")
    rule = CATEGORY_RULES[category]
    base_detail = {"category": category, "model": model, "prompt_version": prompt_version}

    def reject(item_id: str, reason: str, metric=None, value=None, threshold=None, **detail: Any) -> Decision:
        return dropped(
            item_id, reason, item_kind=ITEM_KIND, parent_id=clip_id,
            metric=metric, value=value, threshold=threshold, detail={**base_detail, **detail},
        )

    items = extract_question_items(raw_text or "")
    if not items:
        # An explicit empty list is a valid answer ("no interaction to ask about").
        stripped = "".join((raw_text or "").split())
        if re.search(r"\[\]", stripped):
            return [], []
        return [], [reject(f"{clip_id}:{category}:response", "unparseable response: no JSON list or object found",
                           raw_excerpt=(raw_text or "")[:200])]

    accepted: list[QA] = []
    rejections: list[Decision] = []
    seen_ids: set[str] = set()
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            rejections.append(reject(f"{clip_id}:{category}:item{position}",
                                     "unparseable item: not an object with question, options and answer",
                                     item_position=position))
            continue
        question_value = _field(item, "question", "q")
        question = " ".join(str(question_value).split()) if question_value is not None else ""
        qa_id = make_qa_id(clip_id, category, question)
        if not question:
            rejections.append(reject(f"{clip_id}:{category}:item{position}", "missing question", item_position=position))
            continue
        options = _as_options(_field(item, "options", "choices", "candidates", "answers"))
        if options is None:
            rejections.append(reject(qa_id, "missing options", question=question))
            continue
        answer_value = _field(item, "answer", "correct_answer", "answer_index", "correct", "label", "correct_option")
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
        violation = rule_violation(category, question, options, answer_index, subject_count)
        if violation:
            reason, metric, value, threshold = violation
            rejections.append(reject(qa_id, reason, metric, value, threshold, question=question))
            continue
        if len(accepted) >= rule.max_questions:
            rejections.append(reject(
                qa_id,
                f"more questions than {category} allows: {rule.max_questions} per caption",
                "question_position", float(len(accepted) + 1), float(rule.max_questions), question=question,
            ))
            continue
        seen_ids.add(qa_id)
        accepted.append(QA(qa_id, clip_id, category, question, tuple(options), answer_index, model, prompt_version))
    return accepted, rejections
