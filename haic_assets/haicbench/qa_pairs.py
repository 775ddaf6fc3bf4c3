"""qa_pairs: multiple-choice QA per caption and category, parsed, checked and shuffled.

Two sources of the raw answers (config `source`):
- `llm` (default): the configured LLM answers the five `qa_<category>.txt` prompts per caption;
- `raw_files`: answers an LLM produced elsewhere, imported from
  `annotations/<batch>/qa_raw/<clip_id>__<category>.txt` (one raw answer per file). The files
  carry no provenance of their own; an optional `qa_raw/provenance.json`
  ({"model": ..., "prompt_version": ...}) names it, otherwise both are recorded as 'imported'.
Either way the answers go through the same parser and rules; nothing is invented.
"""

import json
from typing import Literal

import pandas as pd
from dagster import AssetExecutionContext, Config, Failure, MetadataValue, Output, asset
from pydantic import Field

from haic_core.decisions import error, kept
from haic_core.haicbench.qa_parsing import CATEGORIES, QA, parse_qa_response
from haic_core.haicbench.qa_shuffle import answer_balance_by_category, shuffle_options
from haic_resources.llm.client import GenerationSettings, map_concurrent
from haic_resources.llm.resource import LLMResource
from haic_resources.llm.prompts import load_template, render
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.haicbench.bench_captions import annotation_dir
from haic_assets.platform.ledger import preview, record_decisions
from haic_assets.platform.partitions import annotation_batches
from haic_assets.platform.resources import llm_pool, llm_version
from haic_assets.platform.settings import setting, stage_code_version

STAGE = "qa_pairs"
IMPORTED = "imported"
QA_COLUMNS = ["qa_id", "clip_id", "video_id", "category", "question", "options", "answer_index",
              "generated_answer_index", "model", "prompt_version", "subject_count", "source", "cached"]


def prompt_name(category: str) -> str:
    return f"qa_{category}"


def _prompt_versions() -> str:
    return "-".join(load_template(prompt_name(c))[1].split("+")[-1][:6] for c in CATEGORIES)


class QAPairsConfig(Config):
    source: Literal["llm", "raw_files"] = Field(
        default=setting(STAGE, "source", "llm"),
        description="llm: ask the configured LLM; raw_files: import answers from annotations/<batch>/qa_raw/")
    categories: list[str] = Field(default=setting(STAGE, "categories", list(CATEGORIES)))
    temperature: float = Field(default=setting(STAGE, "temperature", 0.0))
    max_output_tokens: int = Field(default=setting(STAGE, "max_output_tokens", 1024))
    ask_interaction_for_single_subject: bool = Field(
        default=setting(STAGE, "ask_interaction_for_single_subject", False),
        description="the paper asks no interaction question when a caption has one subject")


@asset(
    partitions_def=annotation_batches,
    io_manager_key="tables",
    group_name="haicbench",
    code_version=f"{stage_code_version(STAGE, QAPairsConfig)}-{_prompt_versions()}-{llm_version()}",
    pool=llm_pool(),
    description="QA pairs of one annotation batch in the five categories (LLM answers, or imported raw answers), "
                "normalized, rule-checked (rejections in the ledger) and with options shuffled by QA id.",
)
def qa_pairs(context: AssetExecutionContext, config: QAPairsConfig, bench_captions: pd.DataFrame, llm: LLMResource,
             storage: StorageResource, warehouse: WarehouseResource) -> Output[pd.DataFrame]:
    unknown = sorted(set(config.categories) - set(CATEGORIES))
    if unknown:
        raise Failure(description=f"unknown QA categories {unknown}; expected some of {list(CATEGORIES)}")
    captions = list(bench_captions.itertuples(index=False))
    if config.source == "llm":
        answers, extra = _llm_answers(context, config, captions, llm)
    else:
        answers, extra = _raw_file_answers(context, config, captions, storage)

    rows, decisions = [], list(extra.pop("decisions"))
    by_clip = {c.clip_id: c for c in captions}
    for (clip_id, category), answer in answers.items():
        caption = by_clip[clip_id]
        subject_count = None if pd.isna(caption.subject_count) else int(caption.subject_count)
        qas, rejections = parse_qa_response(answer["text"], clip_id=clip_id, category=category, model=answer["model"],
                                            prompt_version=answer["prompt_version"], subject_count=subject_count)
        decisions += rejections
        for qa in qas:
            shuffled = shuffle_options(qa)
            decisions.append(kept(qa.qa_id, "parsed", item_kind="qa", parent_id=clip_id,
                                  detail={"category": category, "model": qa.model, "source": config.source}))
            rows.append({**shuffled.as_record(), "video_id": caption.video_id, "generated_answer_index": qa.answer_index,
                         "subject_count": subject_count, "source": config.source, "cached": answer["cached"]})
    table = pd.DataFrame(rows, columns=QA_COLUMNS).astype({"subject_count": "Int64"})
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(extra)
    metadata.update(rows=len(table),
                    qa_per_category=MetadataValue.json(table["category"].value_counts().to_dict()),
                    answer_positions=MetadataValue.md(answer_positions_md(table)),
                    preview=preview(table, ["clip_id", "category", "question", "answer_index"]))
    return Output(table, metadata=metadata)


def _wanted(config: QAPairsConfig, caption) -> list[str]:
    single = not pd.isna(caption.subject_count) and int(caption.subject_count) == 1
    return [c for c in config.categories
            if not (c == "interaction" and single and not config.ask_interaction_for_single_subject)]


def _llm_answers(context, config: QAPairsConfig, captions, llm: LLMResource):
    client = llm.client()  # fails fast with how to configure a backend
    settings = GenerationSettings(temperature=config.temperature, max_output_tokens=config.max_output_tokens)
    templates = {c: load_template(prompt_name(c)) for c in config.categories}
    jobs = [(caption, category) for caption in captions for category in _wanted(config, caption)]

    def ask(job):
        caption, category = job
        template, version = templates[category]
        return client.complete_json(render(template, caption=caption.caption), settings=settings,
                                    prompt_version=version)

    context.log.info(f"asking {llm.provider}/{llm.model_name} for QA: {len(jobs)} (caption, category) prompts, "
                     f"{llm.concurrency} in flight")
    answers, decisions = {}, []
    for outcome in map_concurrent(ask, jobs, llm.concurrency):
        caption, category = outcome.item
        if not outcome.ok:
            decisions.append(error(f"{caption.clip_id}:{category}:response",
                                   f"{outcome.error.kind}: {outcome.error.reason}", item_kind="qa",
                                   parent_id=caption.clip_id, detail={"category": category,
                                                                      "attempts": outcome.error.attempts}))
            continue
        result = outcome.value
        answers[(caption.clip_id, category)] = {"text": result.text, "model": result.model,
                                                "prompt_version": templates[category][1], "cached": result.cached}
    usage = client.usage_snapshot()
    context.log.info(f"LLM usage: {usage}")
    return answers, {"decisions": decisions, "source": "llm", "llm_usage": MetadataValue.json(usage),
                     "requests_sent": usage.get("requests_sent", 0), "cache_hits": usage.get("cache_hits", 0),
                     "cost_usd": float(usage.get("cost_usd", 0.0))}


def _raw_file_answers(context, config: QAPairsConfig, captions, storage: StorageResource):
    folder = annotation_dir(storage, context.partition_key) / "qa_raw"
    if not folder.is_dir():
        raise Failure(description=f"source 'raw_files' but annotation batch {context.partition_key!r} has no "
                                  f"qa_raw/ folder ({folder})")
    provenance_file = folder / "provenance.json"
    provenance = json.loads(provenance_file.read_text()) if provenance_file.is_file() else {}
    model = str(provenance.get("model") or IMPORTED)
    prompt_version = str(provenance.get("prompt_version") or IMPORTED)
    by_clip = {c.clip_id: c for c in captions}
    answers, missing, orphans = {}, [], []
    for path in sorted(folder.glob("*.txt")):
        clip_id, _, category = path.stem.rpartition("__")
        if clip_id not in by_clip or category not in config.categories:
            orphans.append(path.name)
            continue
        answers[(clip_id, category)] = {"text": path.read_text(encoding="utf-8"), "model": model,
                                        "prompt_version": prompt_version, "cached": False}
    for caption in captions:
        missing += [f"{caption.clip_id}__{c}" for c in _wanted(config, caption) if (caption.clip_id, c) not in answers]
    context.log.info(f"imported {len(answers)} raw answers from {folder} (model {model!r}); "
                     f"{len(missing)} expected files missing, {len(orphans)} files for no kept caption")
    return answers, {"decisions": [], "source": "raw_files", "raw_answers": len(answers),
                     "raw_answers_missing": MetadataValue.json(missing),
                     "raw_files_without_caption": MetadataValue.json(orphans)}


def answer_positions_md(table: pd.DataFrame) -> str:
    """Where the correct answer sits per category (after the shuffle)."""
    if table.empty:
        return "_(no QA)_"
    qas = [QA(r.qa_id, r.clip_id, r.category, r.question, tuple(r.options), int(r.answer_index), r.model,
              r.prompt_version) for r in table.itertuples(index=False)]
    lines = ["| category | questions | answers at A, B, C, ... | max deviation from even |", "|---|---|---|---|"]
    for category, balance in answer_balance_by_category(qas).items():
        lines.append(f"| {category} | {balance.n_questions} | {', '.join(map(str, balance.counts))} "
                     f"| {balance.max_deviation:.3f} |")
    return "\n".join(lines)
