"""qa_pairs: multiple-choice QA per caption and category, parsed, checked and shuffled.

Two sources of the raw answers (config `source`):
- `llm` (default): the configured LLM answers the five `qa_<category>.txt` prompts per caption;
- `raw_files`: answers an LLM produced elsewhere, imported from
  `annotations/<batch>/qa_raw/<clip_id>__<category>.txt` (one raw answer per file), with the
  optional `qa_raw/provenance.json` naming the model and prompt version.
Either way the answers go through the same parser and rules; nothing is invented.
"""

from typing import Literal

import pandas as pd
from dagster import MetadataValue
from pydantic import Field

from haic_core.decisions import error, pending
from haic_core.haicbench.annotations import (RAW_ANSWERS_FOLDER, RAW_ANSWERS_PROVENANCE, files_by_batch,
                                             has_raw_answers, imported_answers, imported_provenance, raw_answer_files)
from haic_core.haicbench.qa import CATEGORIES, MAX_OPTION_WORDS, QA, SOFT_RULES, QARules, Strictness
from haic_core.haicbench.qa_generation import RawAnswer, qa_pairs_table, questions_to_ask
from haic_core.haicbench.qa_shuffle import answer_positions_markdown
from haic_resources.llm.prompts import load_template, render
from haic_resources.llm.types import GenerationSettings, LLMError
from haic_platform.llm_batches import BatchSettings, answer_calls
from haic_assets.platform.partitions import annotation_batches
from haic_platform.stage import StageContext, StageFailure, StageResult, partitioned_stage

QA_COLUMN_DOCS = {
    "qa_id": "the question's id: clip, category and a hash of the question",
    "clip_id": "the clip the caption is about",
    "video_id": "the video the clip was cut from",
    "category": "interaction, action_details, action_sequence, count or attribute",
    "question": "the question",
    "options": "the options in the order shown (shuffled by QA id after generation)",
    "answer_index": "0-based position of the correct option, after the shuffle",
    "answer_text": "the correct option's text",
    "generated_answer_index": "0-based position where the LLM put the correct option, before the shuffle",
    "flags": "the paper's soft rules the QA breaks (measured, not rejected by default)",
    "rule_values": "every soft rule's measured value and limit, as JSON",
    "model": "the LLM that wrote the QA",
    "prompt_version": "version of the category's QA prompt template",
    "subject_count": "subjects the human caption declares",
    "source": "llm (asked now) or raw_files (answers imported from the batch's qa_raw/ folder)",
    "cached": "the LLM's answer came from the response cache",
}


class QAPairsConfig(BatchSettings):
    source: Literal["llm", "raw_files"] = Field(
        default="llm",
        description="llm: ask the configured LLM; raw_files: import answers from annotations/<batch>/qa_raw/")
    categories: list[str] = Field(default=list(CATEGORIES))
    temperature: float = Field(default=0.0, ge=0.0)
    max_output_tokens: int = Field(default=1024, ge=1)
    ask_interaction_for_single_subject: bool = Field(
        default=False, description="the paper asks no interaction question when a caption has one subject")
    # The soft rules: measured on every QA (value and limit in the table and the ledger); each
    # one flags a QA that breaks it (the paper's own examples break some) or rejects it.
    max_option_words: int = Field(default=MAX_OPTION_WORDS, ge=1, description="the paper: options of at most 15 words")
    max_option_length_ratio: float = Field(
        default=QARules().max_option_length_ratio, ge=1.0, description="longest / shortest option, in words")
    option_words: Strictness = Field(default="flag", description="an option over max_option_words")
    option_length_ratio: Strictness = Field(default="flag", description="options of very different lengths")
    before_after: Strictness = Field(default="flag", description="'before'/'after' in an action-details QA")
    sequence_phrasing: Strictness = Field(
        default="flag", description="a sequence question not 'What does ... do immediately after / just before ...'")
    count_phrasing: Strictness = Field(default="flag", description="a count question not starting 'How many'")
    numbered_subject: Strictness = Field(default="flag", description="'Subject 2' / 'person 1' in a QA")

    def rules(self) -> QARules:
        return QARules(max_option_words=self.max_option_words, max_option_length_ratio=self.max_option_length_ratio,
                       strictness={rule: getattr(self, rule) for rule in SOFT_RULES})


def prompt_name(category: str) -> str:
    return f"qa_{category}"


def _prompt_versions(config: QAPairsConfig) -> str:
    """Every category's prompt (not only the configured ones: an unknown category is the run's error)."""
    return "-".join(load_template(prompt_name(c))[1].split("+")[-1][:6] for c in CATEGORIES)


@partitioned_stage("qa_pairs", QAPairsConfig, ins=("bench_captions",), partitions=annotation_batches, kind="llm",
                   resources=("llm",), fingerprint=_prompt_versions, column_docs=QA_COLUMN_DOCS)
def qa_pairs(stage: StageContext, config: QAPairsConfig, bench_captions: pd.DataFrame) -> StageResult:
    """QA pairs of one annotation batch in the five categories (LLM answers, or imported raw answers),
    normalized, rule-checked (rejections in the ledger) and with options shuffled by QA id."""
    unknown = sorted(set(config.categories) - set(CATEGORIES))
    if unknown:
        raise StageFailure(f"unknown QA categories {unknown}; expected some of {list(CATEGORIES)}")
    asked = questions_to_ask(bench_captions, config.categories, config.ask_interaction_for_single_subject)
    answer = _llm_answers if config.source == "llm" else _imported_answers
    answers, decisions, metadata = answer(stage, config, bench_captions, asked)
    table, parsed = qa_pairs_table(answers, bench_captions, config.source, config.rules())
    metadata.update(qa_per_category=MetadataValue.json(table["category"].value_counts().to_dict()),
                    qa_flagged=MetadataValue.json(table["flags"].explode().dropna().value_counts().to_dict()),
                    answer_positions=MetadataValue.md(answer_positions_markdown(
                        [QA.from_record(r) for r in table.to_dict("records")])))
    return StageResult(table, decisions + parsed, metadata=metadata,
                       preview=["clip_id", "category", "question", "answer_index"])


def _llm_answers(stage: StageContext, config: QAPairsConfig, bench_captions: pd.DataFrame,
                 asked: list[tuple[str, str]]):
    """The configured LLM's answer to each (caption, category) asked; a failed request is an error decision."""
    llm = stage.llm
    client = llm.client()  # fails fast with how to configure a backend
    settings = GenerationSettings(temperature=config.temperature, max_output_tokens=config.max_output_tokens)
    templates = {c: load_template(prompt_name(c)) for c in config.categories}
    caption_of = dict(zip(bench_captions["clip_id"], bench_captions["caption"]))

    # The answer as written: the category's parser reads every shape, the sentinel included.
    calls = {f"{clip_id}:{category}": client.text_call(render(templates[category][0], caption=caption_of[clip_id]),
                                                       settings=settings, prompt_version=templates[category][1],
                                                       as_written=True)
             for clip_id, category in asked}
    stage.log.info(f"asking {llm.provider}/{llm.model_name} for QA: {len(asked)} (caption, category) prompts, "
                   f"{config.llm_mode}, {llm.concurrency} in flight")
    outcomes = answer_calls(stage, client, calls, config)
    answers, decisions = {}, []
    for clip_id, category in asked:
        outcome = outcomes.results.get(f"{clip_id}:{category}")
        if outcome is None:  # in a batch job still running: where it is, until the job is ingested
            decisions.append(pending(f"{clip_id}:{category}:response", outcomes.pending[f"{clip_id}:{category}"],
                                     item_kind="qa", parent_id=clip_id))
            continue
        if isinstance(outcome, LLMError):
            decisions.append(error(f"{clip_id}:{category}:response", f"{outcome.kind}: {outcome.reason}",
                                   item_kind="qa", parent_id=clip_id,
                                   detail={"category": category, "attempts": outcome.attempts}))
            continue
        answers[(clip_id, category)] = RawAnswer(outcome.text, outcome.model, templates[category][1], outcome.cached)
    usage = client.usage_snapshot()
    stage.log.info(f"LLM usage: {usage}")
    return answers, decisions, {"source": "llm", "llm_usage": MetadataValue.json(usage),
                                "requests_sent": usage.get("requests_sent", 0),
                                "cache_hits": usage.get("cache_hits", 0), "cost_usd": float(usage.get("cost_usd", 0.0)),
                                **outcomes.summary()}


def _imported_answers(stage: StageContext, config: QAPairsConfig, bench_captions: pd.DataFrame,
                      asked: list[tuple[str, str]]):
    """The batch's raw answer files read from the annotations store."""
    batch, annotations = stage.partition_key, stage.storage.annotations()
    files = files_by_batch(annotations.list(f"{batch}/")).get(batch, set())
    folder = f"{batch}/{RAW_ANSWERS_FOLDER}"
    if not has_raw_answers(files):
        raise StageFailure(f"source 'raw_files' but annotation batch {batch!r} has no qa_raw/ folder "
                           f"({annotations.uri}/{folder})")
    model, prompt_version = imported_provenance(annotations.get_bytes(f"{batch}/{RAW_ANSWERS_PROVENANCE}"))
    raw = {name: annotations.get_bytes(f"{folder}/{name}") for name in raw_answer_files(files)}
    answers, orphans = imported_answers(raw, model=model, prompt_version=prompt_version,
                                        clip_ids=set(bench_captions["clip_id"]), categories=config.categories)
    missing = [f"{clip_id}__{category}" for clip_id, category in asked if (clip_id, category) not in answers]
    stage.log.info(f"imported {len(answers)} raw answers from {annotations.uri}/{folder} (model {model!r}); "
                   f"{len(missing)} expected files missing, {len(orphans)} files for no kept caption")
    return answers, [], {"source": "raw_files", "raw_answers": len(answers),
                         "raw_answers_missing": MetadataValue.json(missing),
                         "raw_files_without_caption": MetadataValue.json(orphans)}
