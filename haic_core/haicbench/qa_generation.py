"""From HAICBench captions to QA pairs: which (caption, category) questions to ask, and the raw
answers parsed, rule-checked and shuffled into the qa_pairs table with a decision per QA.

The answers come from an LLM asked now or from files an LLM wrote elsewhere (see
annotations.imported_answers); either way they go through the same parser and rules, and
nothing is invented.
Pure: no I/O, no Dagster.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from haic_core.decisions import Decision, kept
from haic_core.haicbench.qa_parsing import parse_qa_response
from haic_core.haicbench.qa_shuffle import shuffle_options

QA_COLUMNS = ["qa_id", "clip_id", "video_id", "category", "question", "options", "answer_index",
              "generated_answer_index", "model", "prompt_version", "subject_count", "source", "cached"]


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


def qa_pairs_table(answers: Mapping[tuple[str, str], RawAnswer], bench_captions: pd.DataFrame,
                   source: str) -> tuple[pd.DataFrame, list[Decision]]:
    """Every answer parsed and checked (rejections as dropped decisions), the accepted QA with
    their options shuffled by QA id (QA_COLUMNS; `generated_answer_index` is where the LLM put
    the answer), in answer order."""
    by_clip = {c.clip_id: c for c in bench_captions.itertuples(index=False)}
    rows, decisions = [], []
    for (clip_id, category), answer in answers.items():
        caption = by_clip[clip_id]
        subject_count = _subject_count(caption)
        qas, rejections = parse_qa_response(answer.text, clip_id=clip_id, category=category, model=answer.model,
                                            prompt_version=answer.prompt_version, subject_count=subject_count)
        decisions += rejections
        for qa in qas:
            shuffled = shuffle_options(qa)
            decisions.append(kept(qa.qa_id, "parsed", item_kind="qa", parent_id=clip_id,
                                  detail={"category": category, "model": qa.model, "source": source}))
            rows.append({**shuffled.as_record(), "video_id": caption.video_id,
                         "generated_answer_index": qa.answer_index, "subject_count": subject_count, "source": source,
                         "cached": answer.cached})
    return pd.DataFrame(rows, columns=QA_COLUMNS).astype({"subject_count": "Int64"}), decisions
