"""captions: the LLM re-captions every clip of the filtered set in the paper's standardized format."""

import json

import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue, Output, asset
from pydantic import Field

from haic_core.decisions import error, kept
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

STAGE = "captions"
PROMPT = "caption_recaption"


class CaptionConfig(Config):
    temperature: float = Field(default=setting(STAGE, "temperature", 0.0))
    max_output_tokens: int = Field(default=setting(STAGE, "max_output_tokens", 2048))
    prompt_template: str = Field(default=setting(STAGE, "prompt_template", PROMPT),
                                 description="template file in haic_resources/llm/prompts/")


CAPTION_COLUMNS = ["clip_id", "video_id", "clip_key", "clip_path", "description", "caption", "raw_response",
                   "provider", "model", "prompt_version", "input_tokens", "output_tokens", "cost_usd", "cached",
                   "attempts"]


def _prompt_version(name: str) -> str:
    return load_template(name)[1]


@asset(
    partitions_def=source_shards,
    io_manager_key="tables",
    group_name="haic_train",
    code_version=f"{stage_code_version(STAGE, CaptionConfig)}-{_prompt_version(PROMPT)}-{llm_version()}",
    pool=llm_pool(),
    description="Standardized multi-person captions of the filtered clips (Gemini or an OpenAI-compatible "
                "model). Needs an LLM backend; responses are cached by every input, so re-runs pay nothing.",
    backfill_policy=BACKFILL_POLICY,
)
def captions(context: AssetExecutionContext, config: CaptionConfig, action_filtered, llm: LLMResource,
             storage: StorageResource, warehouse: WarehouseResource) -> Output:
    return each_partition(context, _captions, inputs=("action_filtered",), config=config,
                          action_filtered=action_filtered, llm=llm, storage=storage, warehouse=warehouse)


def _captions(context: AssetExecutionContext, config: CaptionConfig, action_filtered: pd.DataFrame,
             llm: LLMResource, storage: StorageResource, warehouse: WarehouseResource) -> Output[pd.DataFrame]:
    client = llm.client()  # fails fast with how to configure a backend
    template, version = load_template(config.prompt_template)
    settings = GenerationSettings(temperature=config.temperature, max_output_tokens=config.max_output_tokens)

    def caption_one(clip):
        prompt = render(template, original_description=clip.description or "")
        return client.caption_video(clip.clip_path, prompt, settings=settings, prompt_version=version)

    clips = list(action_filtered.itertuples(index=False))
    context.log.info(f"captioning {len(clips)} clips with {llm.provider}/{llm.model_name} "
                     f"(prompt {version}, {llm.concurrency} in flight)")
    outcomes = map_concurrent(caption_one, clips, llm.concurrency)
    rows, decisions = [], []
    for outcome in outcomes:
        clip = outcome.item
        if not outcome.ok:
            decisions.append(error(clip.clip_id, f"{outcome.error.kind}: {outcome.error.reason}",
                                   item_kind="clip", parent_id=clip.video_id,
                                   detail={"attempts": outcome.error.attempts}))
            continue
        result = outcome.value
        decisions.append(kept(clip.clip_id, "captioned" + (" (cache)" if result.cached else ""), item_kind="clip",
                              parent_id=clip.video_id, metric="output_tokens", value=float(result.output_tokens)))
        rows.append({"clip_id": clip.clip_id, "video_id": clip.video_id, "clip_key": clip.clip_key,
                     "clip_path": clip.clip_path, "description": clip.description, "caption": result.text,
                     "raw_response": json.dumps(result.raw_response, default=str), "provider": result.provider,
                     "model": result.model, "prompt_version": version, "input_tokens": result.input_tokens,
                     "output_tokens": result.output_tokens, "cost_usd": result.cost_usd, "cached": result.cached,
                     "attempts": result.attempts})
    table = pd.DataFrame(rows, columns=CAPTION_COLUMNS)
    usage = client.usage_snapshot()
    context.log.info(f"LLM usage: {usage}")
    metadata = record_decisions(context, STAGE, decisions, config, storage, warehouse)
    metadata.update(rows=len(table), llm_usage=MetadataValue.json(usage),
                    cost_usd=float(table["cost_usd"].sum()) if len(table) else 0.0,
                    requests_sent=usage.get("requests_sent", 0), cache_hits=usage.get("cache_hits", 0),
                    retries=usage.get("retries", 0), preview=preview(table, ["clip_id", "caption", "cached"]))
    return Output(table, metadata=metadata)
