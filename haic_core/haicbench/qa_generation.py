"""From HAICBench captions to QA pairs: which (caption, category) questions to ask, and the raw
answers parsed, rule-checked and shuffled into the qa_pairs table with a decision per QA.

The answers come from an LLM asked now or from files an LLM wrote elsewhere (see
annotations.imported_answers); either way they go through the same parser and rules, and
nothing is invented.
Pure: no I/O, no Dagster.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from haic_core.decisions import Decision, kept
from haic_core.haicbench.qa import QARules
from haic_core.haicbench.qa_parsing import ParsedQA, read_qa_answer
from haic_core.haicbench.qa_shuffle import shuffle_options

# `answer_text` is the correct option's text (it moves with its option in the shuffle); `flags`
# the soft rules the QA breaks; `rule_values` every soft rule's value and limit, as JSON.
QA_COLUMNS = ["qa_id", "clip_id", "video_id", "category", "question", "options", "answer_index", "answer_text",
              "generated_answer_index", "flags", "rule_values", "model", "prompt_version", "subject_count", "source",
              "cached"]


@dataclass(frozen=True)
class RawAnswer:
    """What an LLM wrote for one (caption, category), and who wrote it."""

    text: str
    model: str
    prompt_version: str
    cached: bool = False


def _subject_count(caption) -> int | None:
    return None if pd.isna(caption.subject_count) else int(caption.subject_count)


def questions_to_ask(bench_captions: pd.DataFrame, categories: Sequence[str],
                     ask_interaction_for_single_subject: bool) -> list[tuple[str, str]]:
    """(clip_id, category) per caption and category asked, in caption order. The paper asks no
    interaction question when a caption has one subject."""
    asked = []
    for caption in bench_captions.itertuples(index=False):
        single = _subject_count(caption) == 1
        asked += [(caption.clip_id, c) for c in categories
                  if not (c == "interaction" and single and not ask_interaction_for_single_subject)]
    return asked


def kept_decision(parsed: ParsedQA, source: str) -> Decision:
    """The ledger row of an accepted QA: every soft rule's value and limit in the detail; a
    flagged QA names its first broken rule as the measurement."""
    qa = parsed.qa
    broken = [m for m in parsed.measures if m.broken]
    reason = "parsed" + (f"; flagged: {', '.join(m.rule for m in broken)}" if broken else "")
    evidence = {"metric": broken[0].rule, "value": broken[0].value, "threshold": broken[0].limit} if broken else {}
    return kept(qa.qa_id, reason, item_kind="qa", parent_id=qa.clip_id, **evidence,
                detail={"category": qa.category, "model": qa.model, "source": source, "flags": list(parsed.flags),
                        "rules": [m.as_record() for m in parsed.measures]})


def rule_values_json(parsed: ParsedQA) -> str:
    """{rule: {"value", "limit", "broken"}} of one QA, as stored in the qa_pairs table."""
    return json.dumps({m.rule: {"value": m.value, "limit": m.limit, "broken": m.broken} for m in parsed.measures},
                      sort_keys=True)


def qa_pairs_table(answers: Mapping[tuple[str, str], RawAnswer], bench_captions: pd.DataFrame,
                   source: str, rules: QARules = QARules()) -> tuple[pd.DataFrame, list[Decision]]:
    """Every answer parsed and checked (rejections, and zero-QA answers with their reason, as
    dropped decisions), the accepted QA with their options shuffled by QA id (QA_COLUMNS;
    `generated_answer_index` is where the LLM put the answer), in answer order."""
    by_clip = {c.clip_id: c for c in bench_captions.itertuples(index=False)}
    rows, decisions = [], []
    for (clip_id, category), answer in answers.items():
        caption = by_clip[clip_id]
        subject_count = _subject_count(caption)
        reading = read_qa_answer(answer.text, clip_id=clip_id, category=category, model=answer.model,
                                 prompt_version=answer.prompt_version, subject_count=subject_count, rules=rules)
        decisions += reading.rejections
        for parsed in reading.accepted:
            shuffled = shuffle_options(parsed.qa)
            decisions.append(kept_decision(parsed, source))
            rows.append({**shuffled.as_record(), "answer_text": shuffled.answer_text, "video_id": caption.video_id,
                         "generated_answer_index": parsed.qa.answer_index, "flags": list(parsed.flags),
                         "rule_values": rule_values_json(parsed), "subject_count": subject_count, "source": source,
                         "cached": answer.cached})
    return pd.DataFrame(rows, columns=QA_COLUMNS).astype({"subject_count": "Int64"}), decisions
