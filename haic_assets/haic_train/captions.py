"""captions: the LLM re-captions every clip of the filtered set in the paper's standardized format."""

import json

import pandas as pd
from dagster import MetadataValue
from pydantic import Field

from haic_core.decisions import error, kept, pending
from haic_resources.llm.prompts import load_template, render
from haic_resources.llm.types import GenerationSettings, LLMError
from haic_assets.accumulation.action_filtered import FILTERED_COLUMNS
from haic_platform.llm_batches import BatchSettings, answer_calls
from haic_platform.stage import StageContext, StageResult, partitioned_stage


class CaptionConfig(BatchSettings):
    temperature: float = Field(default=0.0, ge=0.0)
    max_output_tokens: int = Field(default=2048, ge=1)
    prompt_template: str = Field(default="caption_recaption",
                                 description="template file in haic_resources/llm/prompts/")


CAPTION_COLUMNS = {
    **{name: FILTERED_COLUMNS[name] for name in ("clip_id", "video_id", "clip_key", "clip_path", "description")},
    "caption": "the model's caption in the standardized format (subjects, then a paragraph per subject)",
    "raw_response": "the provider's whole answer, as JSON (the API key never in it)",
    "provider": "gemini or openai (an OpenAI-compatible server)",
    "model": "the model that wrote the caption",
    "prompt_version": "version of the caption prompt template (part of the cache key)",
    "input_tokens": "tokens the request used (video and prompt)",
    "output_tokens": "tokens of the answer",
    "cost_usd": "what the call cost at the configured prices (0 for an answer from the cache)",
    "cached": "answered from the response cache: no request, nothing paid",
    "attempts": "requests the call took (1 + retries; 0 from the cache)",
    "batch_job": "the batch job that answered it (empty: answered online)",
}


@partitioned_stage("captions", CaptionConfig, ins=("action_filtered",), kind="llm", resources=("llm",),
                   fingerprint=lambda config: load_template(config.prompt_template)[1], column_docs=CAPTION_COLUMNS)
def captions(stage: StageContext, config: CaptionConfig, action_filtered: pd.DataFrame) -> StageResult:
    """Standardized multi-person captions of the filtered clips (Gemini or an OpenAI-compatible
    model), online or through batch jobs (`llm_mode`). Needs an LLM backend; responses are cached
    by every input, so re-runs pay nothing."""
    llm = stage.llm
    client = llm.client()  # fails fast with how to configure a backend
    template, version = load_template(config.prompt_template)
    settings = GenerationSettings(temperature=config.temperature, max_output_tokens=config.max_output_tokens)

    clips = {clip.clip_id: clip for clip in action_filtered.itertuples(index=False)}
    calls, unreadable = {}, {}
    for clip_id, clip in clips.items():
        prompt = render(template, original_description=clip.description or "")
        try:
            calls[clip_id] = client.video_call(clip.clip_path, prompt, settings=settings, prompt_version=version)
        except LLMError as exc:
            unreadable[clip_id] = exc
    stage.log.info(f"captioning {len(clips)} clips with {llm.provider}/{llm.model_name} "
                   f"(prompt {version}, {config.llm_mode}, {llm.concurrency} in flight)")
    answers = answer_calls(stage, client, calls, config)
    outcomes = {**unreadable, **answers.results}
    rows, decisions = [], []
    for clip_id, clip in clips.items():
        result = outcomes.get(clip_id)
        if result is None:  # in a batch job still running: decided when the job's results are ingested
            decisions.append(pending(clip_id, answers.pending[clip_id], item_kind="clip", parent_id=clip.video_id))
            continue
        if isinstance(result, LLMError):
            decisions.append(error(clip_id, f"{result.kind}: {result.reason}", item_kind="clip",
                                   parent_id=clip.video_id, detail={"attempts": result.attempts}))
            continue
        job = answers.batch_job.get(clip_id, "")
        reason = "captioned" + (" (cache)" if result.cached else "") + (" (batch)" if job else "")
        decisions.append(kept(clip_id, reason, item_kind="clip", parent_id=clip.video_id, metric="output_tokens",
                              value=float(result.output_tokens), detail={"batch_job": job} if job else {}))
        rows.append({"clip_id": clip_id, "video_id": clip.video_id, "clip_key": clip.clip_key,
                     "clip_path": clip.clip_path, "description": clip.description, "caption": result.text,
                     "raw_response": json.dumps(result.raw_response, default=str), "provider": result.provider,
                     "model": result.model, "prompt_version": version, "input_tokens": result.input_tokens,
                     "output_tokens": result.output_tokens, "cost_usd": result.cost_usd, "cached": result.cached,
                     "attempts": result.attempts, "batch_job": job})
    table = pd.DataFrame(rows, columns=list(CAPTION_COLUMNS))
    usage = client.usage_snapshot()
    stage.log.info(f"LLM usage: {usage}; {answers.summary()}")
    return StageResult(table, decisions, preview=["clip_id", "caption", "cached"], metadata={
        "llm_usage": MetadataValue.json(usage), "cost_usd": float(table["cost_usd"].sum()) if len(table) else 0.0,
        "requests_sent": usage.get("requests_sent", 0), "cache_hits": usage.get("cache_hits", 0),
        "retries": usage.get("retries", 0), **answers.summary()})
