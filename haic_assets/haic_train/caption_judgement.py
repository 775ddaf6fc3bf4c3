"""caption_judgement: reject captions that break the standardized format or are of low quality."""

import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.decisions import Decision, error
from haic_core.haic_train.caption_format import (DEFAULT_MAX_WORDS, DEFAULT_MIN_JUDGE_SCORE, DEFAULT_MIN_WORDS,
                                                 JudgeParseError, check_caption, judge_decision, parse_judge_score)
from haic_resources.llm.concurrency import map_concurrent
from haic_resources.llm.prompts import load_template, render
from haic_resources.llm.types import GenerationSettings
from haic_assets.haic_train.captions import CAPTION_COLUMNS
from haic_platform.stage_checks import CAPTION_PASS_RATE
from haic_platform.settings import not_below
from haic_platform.stage import StageContext, StageResult, partitioned_stage

JUDGE_PROMPT = "caption_judge"


class CaptionJudgementConfig(Config):
    min_words: int = Field(default=DEFAULT_MIN_WORDS, ge=0)
    max_words: int = Field(default=DEFAULT_MAX_WORDS, ge=0, validate_default=True)
    llm_judge: bool = Field(default=False, description="also ask the LLM judge (rubric in prompts/caption_judge.txt)")
    min_judge_score: int = Field(default=DEFAULT_MIN_JUDGE_SCORE, ge=1, le=10,
                                 description="the judge scores 1-10 (prompts/caption_judge.txt)")

    words_range = not_below("min_words", "max_words")


@partitioned_stage("caption_judgement", CaptionJudgementConfig, ins=("captions",), kind="llm", resources=("llm",),
                   fingerprint=lambda config: load_template(JUDGE_PROMPT)[1], checks=(CAPTION_PASS_RATE,),
                   column_docs=CAPTION_COLUMNS)
def caption_judgement(stage: StageContext, config: CaptionJudgementConfig, captions: pd.DataFrame) -> StageResult:
    """Captions that pass the rule-based format check (declared subject count = paragraphs,
    attributes then actions, no audio or 'frames', length bounds, no refusal) and, optionally,
    an LLM judge's score threshold."""
    decisions = {row.clip_id: check_caption(row.caption, item_id=row.clip_id, parent_id=row.video_id,
                                            min_words=config.min_words, max_words=config.max_words)
                 for row in captions.itertuples(index=False)}
    if config.llm_judge:
        candidates = [r for r in captions.itertuples(index=False) if decisions[r.clip_id].verdict == "kept"]
        decisions.update(_llm_judgement(stage, config, candidates))
    kept_ids = [cid for cid, d in decisions.items() if d.verdict == "kept"]
    table = captions[captions["clip_id"].isin(kept_ids)].reset_index(drop=True)
    return StageResult(table, list(decisions.values()), preview=["clip_id", "caption"])


def _llm_judgement(stage: StageContext, config: CaptionJudgementConfig, candidates: list) -> dict[str, Decision]:
    """The judge's decision on each caption that passed the rules."""
    client = stage.llm.client()
    template, version = load_template(JUDGE_PROMPT)

    def judge(row):
        prompt = render(template, original_description=row.description or "", caption=row.caption)
        return client.complete_json(prompt, settings=GenerationSettings(temperature=0.0, max_output_tokens=512),
                                    prompt_version=version)

    judged = {}
    for outcome in map_concurrent(judge, candidates, stage.llm.concurrency):
        row = outcome.item
        if not outcome.ok:
            judged[row.clip_id] = error(row.clip_id, f"judge {outcome.error.kind}: {outcome.error.reason}",
                                        item_kind="caption", parent_id=row.video_id)
            continue
        try:
            judged[row.clip_id] = judge_decision(row.clip_id, parse_judge_score(outcome.value.text),
                                                 min_score=config.min_judge_score, parent_id=row.video_id)
        except JudgeParseError as exc:
            judged[row.clip_id] = error(row.clip_id, f"judge answer unreadable: {exc}", item_kind="caption",
                                        parent_id=row.video_id)
    stage.log.info(f"LLM judge on {len(candidates)} captions: {client.usage_snapshot()}")
    return judged
