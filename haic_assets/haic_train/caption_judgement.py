"""caption_judgement: reject captions that break the standardized format or are of low quality."""

import pandas as pd
from dagster import AssetExecutionContext, Config, Output, asset
from pydantic import Field

from haic_core.haic_train.caption_format import (DEFAULT_MAX_WORDS, DEFAULT_MIN_JUDGE_SCORE, DEFAULT_MIN_WORDS, JudgeParseError,
                                      check_caption, judge_decision, parse_judge_score)
from haic_core.decisions import error
from haic_resources.llm.client import GenerationSettings, map_concurrent
from haic_resources.llm.resource import LLMResource
from haic_resources.llm.prompts import load_template, render
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import WarehouseResource
from haic_assets.platform.ledger import preview, record_decisions
from haic_assets.platform.partition_runs import BACKFILL_POLICY, each_partition
from haic_assets.platform.partitions import source_shards
from haic_assets.platform.resources import llm_pool, llm_version
from haic_assets.platform.settings import setting, stage_code_version

STAGE = "caption_judgement"
JUDGE_PROMPT = "caption_judge"


class CaptionJudgementConfig(Config):
    min_words: int = Field(default=setting(STAGE, "min_words", DEFAULT_MIN_WORDS))
    max_words: int = Field(default=setting(STAGE, "max_words", DEFAULT_MAX_WORDS))
    llm_judge: bool = Field(default=setting(STAGE, "llm_judge", False),
                            description="also ask the LLM judge (rubric in prompts/caption_judge.txt)")
    min_judge_score: int = Field(default=setting(STAGE, "min_judge_score", DEFAULT_MIN_JUDGE_SCORE))


@asset(
    partitions_def=source_shards,
    io_manager_key="tables",
    group_name="haic_train",
    code_version=(f"{stage_code_version(STAGE, CaptionJudgementConfig)}-{load_template(JUDGE_PROMPT)[1]}"
                  f"-{llm_version()}"),
    pool=llm_pool(),
    description="Captions that pass the rule-based format check (declared subject count = paragraphs, "
                "attributes then actions, no audio or 'frames', length bounds, no refusal) and, optionally, "
                "an LLM judge's score threshold.",
    backfill_policy=BACKFILL_POLICY,
)
def caption_judgement(context: AssetExecutionContext, config: CaptionJudgementConfig, captions, llm: LLMResource,
                      storage: StorageResource, warehouse: WarehouseResource) -> Output:
    return each_partition(context, _caption_judgement, inputs=("captions",), config=config, captions=captions,
                          llm=llm, storage=storage, warehouse=warehouse)


def _caption_judgement(context: AssetExecutionContext, config: CaptionJudgementConfig, captions: pd.DataFrame,
                      llm: LLMResource, storage: StorageResource,
                      warehouse: WarehouseResource) -> Output[pd.DataFrame]:
    decisions = {row.clip_id: check_caption(row.caption, item_id=row.clip_id, parent_id=row.video_id,
                                            min_words=config.min_words, max_words=config.max_words)
                 for row in captions.itertuples(index=False)}
    if config.llm_judge:
        decisions.update(_llm_judgement(context, config, captions, decisions, llm))
    kept_ids = [cid for cid, d in decisions.items() if d.verdict == "kept"]
    table = captions[captions["clip_id"].isin(kept_ids)].reset_index(drop=True)
    metadata = record_decisions(context, STAGE, list(decisions.values()), config, storage, warehouse)
    metadata.update(rows=len(table), preview=preview(table, ["clip_id", "caption"]))
    return Output(table, metadata=metadata)


def _llm_judgement(context, config, captions, rule_decisions, llm: LLMResource) -> dict:
    client = llm.client()
    template, version = load_template(JUDGE_PROMPT)
    candidates = [r for r in captions.itertuples(index=False) if rule_decisions[r.clip_id].verdict == "kept"]

    def judge(row):
        prompt = render(template, original_description=row.description or "", caption=row.caption)
        return client.complete_json(prompt, settings=GenerationSettings(temperature=0.0, max_output_tokens=512),
                                    prompt_version=version)

    out = {}
    for outcome in map_concurrent(judge, candidates, llm.concurrency):
        row = outcome.item
        if not outcome.ok:
            out[row.clip_id] = error(row.clip_id, f"judge {outcome.error.kind}: {outcome.error.reason}",
                                     item_kind="caption", parent_id=row.video_id)
            continue
        try:
            out[row.clip_id] = judge_decision(row.clip_id, parse_judge_score(outcome.value.text),
                                              min_score=config.min_judge_score, parent_id=row.video_id)
        except JudgeParseError as exc:
            out[row.clip_id] = error(row.clip_id, f"judge answer unreadable: {exc}", item_kind="caption",
                                     parent_id=row.video_id)
    context.log.info(f"LLM judge on {len(candidates)} captions: {client.usage_snapshot()}")
    return out
