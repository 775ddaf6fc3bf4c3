"""Evaluating one model on a set of HAICBench questions: the calls, then the per-QA answer rows.

Shared by the `eval_answers` asset and `haic evaluate`. Every call goes through an `LLMClient`,
so it is retried, rate-limited and cached under HAIC_HOME/cache/llm: re-scoring a model (a new
reading of its replies, a new judge) never pays for the same call twice. The calls are built
first (`video_call`, `text_call`: one cache key whichever way they are answered), then answered
round by round, online or through batch jobs (haic_assets/platform/llm_batches.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import pandas as pd

from haic_core.evaluation.models import EvalModel
from haic_core.evaluation.protocols import (ERROR, PENDING, UNPARSED, Reading, judge_prompt, read_judge_reply,
                                            read_standard_reply, standard_prompt)
from haic_core.evaluation.results import ANSWER_COLUMNS
from haic_core.haic_train.export import clip_file_name
from haic_core.haicbench.lmms_eval_utils import LETTERS
from haic_resources.llm.client import LLMClient
from haic_resources.llm.concurrency import map_concurrent
from haic_resources.llm.prompts import load_template
from haic_resources.llm.resource import LLMResource
from haic_resources.llm.types import GenerationSettings, LLMError, LLMResult, PreparedCall
from haic_assets.platform.llm_batches import Answers

# Greedy decoding (the paper); a letter needs few tokens, a caption many.
ANSWER_SETTINGS = GenerationSettings(temperature=0.0, max_output_tokens=64)
CAPTION_SETTINGS = GenerationSettings(temperature=0.0, max_output_tokens=1024)
JUDGE_SETTINGS = GenerationSettings(temperature=0.0, max_output_tokens=128)
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v")
KEY_ENV = {"gemini": "GEMINI_API_KEY", "openai": "OPENAI_API_KEY"}
BASE_URL_ENV = {"gemini": "GEMINI_BASE_URL", "openai": "OPENAI_BASE_URL"}  # where an entry names none
# The rounds of calls, each recorded under its own name in llm_batch_requests: the evaluated
# model's (answers, or captions), then the judge's (caption protocol, from the written captions).
MODEL_STEP, JUDGE_STEP = "eval_answers", "eval_judge"
Answerer = Callable[[LLMClient, dict[str, PreparedCall], str], Answers]


def prompt_versions() -> dict[str, str]:
    return {name: load_template(name)[1] for name in ("eval_standard", "eval_caption", "eval_caption_judge")}


def model_client(spec: EvalModel, cache_dir: str | Path, *, concurrency: int = 4, timeout_s: float = 120.0,
                 max_attempts: int = 6) -> LLMClient:
    """The evaluated model's client, through the platform's LLM resource; the key comes from the
    provider's environment variable (a local OpenAI-compatible server needs none), the base URL
    from the entry, else from the provider's environment variable. Not configured (no key, no
    URL): the resource's own `Failure` saying how to configure one."""
    api_key = os.environ.get(KEY_ENV[spec.provider]) or None
    base_url = spec.base_url or os.environ.get(BASE_URL_ENV[spec.provider]) or None
    resource = LLMResource(provider=spec.provider, model=spec.model, api_key=api_key, base_url=base_url,
                           timeout_s=timeout_s, concurrency=concurrency, max_attempts=max_attempts,
                           cache_dir=str(cache_dir),
                           openai_frames_per_video=0 if spec.video_input == "video_url" else spec.frames,
                           openai_send_video_url=spec.video_input == "video_url",
                           input_price_per_million=spec.input_price_per_million or 0.0,
                           output_price_per_million=spec.output_price_per_million or 0.0)
    return resource.client()


def clip_video(video_root: str | Path, clip_id: str) -> Path | None:
    """`<video_root>/<clip_id>.<ext>`, or below its `videos/` under the release's file name
    (`clip_file_name`: a HAICBench release root works as a video root)."""
    root = Path(video_root)
    candidates = [root / f"{clip_id}{extension}" for extension in VIDEO_EXTENSIONS]
    candidates += [root / "videos" / clip_file_name(clip_id), root / "videos" / f"{clip_id}.mp4"]
    return next((c for c in candidates if c.is_file()), None)


def _row(spec: EvalModel, key: str, qa: dict[str, Any], **fields: Any) -> dict[str, Any]:
    reading: Reading | None = fields.pop("reading", None)
    row = {"eval_model": key, "model": spec.model, "provider": spec.provider, "protocol": spec.protocol,
           "frames": spec.frames, "qa_set": spec.qa_set, "qa_id": qa["qa_id"], "clip_id": qa["clip_id"],
           "category": qa["category"], "question": qa["question"], "options": list(qa["options"]),
           "answer_index": int(qa["answer_index"]), "answer": LETTERS[int(qa["answer_index"])],
           "prompt": "", "reply": None, "caption": None, "judge_model": None, "judge_reply": None,
           "predicted": None, "verdict": ERROR, "note": "", "correct": False, "cached": False}
    row.update(fields)
    if reading is not None:
        row.update(predicted=reading.predicted_letter, verdict=reading.verdict, note=reading.note,
                   correct=reading.verdict == "correct")
    return row


def online_answers(client: LLMClient, calls: dict[str, PreparedCall], step: str, *, concurrency: int = 4) -> Answers:
    """Every call answered now (or from the cache): the answerer of `evaluate` outside a stage."""
    outcomes = map_concurrent(lambda item: client.answer(calls[item]), list(calls), concurrency)
    return Answers(results={o.item: o.value if o.ok else o.error for o in outcomes})


def _pending(spec: EvalModel, key: str, qa: dict[str, Any], job_id: str, **fields: Any) -> dict[str, Any]:
    return _row(spec, key, qa, **fields, verdict=PENDING, note=f"batch_pending: in batch job {job_id}")


def _video_calls(client: LLMClient, items: dict[str, str], video_of: Callable[[str], Path | None],
                 prompt: Callable[[str], str], settings: GenerationSettings, version: str):
    """item -> its call about its clip (`items`: item -> clip id), and item -> why it has none."""
    calls, problems = {}, {}
    for item, clip_id in items.items():
        path = video_of(clip_id)
        if path is None:
            problems[item] = f"clip video not found for {clip_id}"
            continue
        try:
            calls[item] = client.video_call(path, prompt(item), settings=settings, prompt_version=version)
        except LLMError as exc:
            problems[item] = f"{exc.kind}: {exc.reason}"
    return calls, problems


def evaluate(spec: EvalModel, questions: Sequence[dict[str, Any]], video_of: Callable[[str], Path | None],
             client: LLMClient, judge: LLMClient | None = None, *, concurrency: int = 4,
             answer: Answerer | None = None) -> pd.DataFrame:
    """One row per question (ANSWER_COLUMNS): what was asked, the raw replies, the reading and the
    verdict. A missing clip or a failed call is that question's `error` (counted wrong); a question
    whose call waits in a batch job is `pending`. `answer` answers one round's calls (online by
    default; the stage passes `answer_calls`, online or through batch jobs)."""
    answer = answer or partial(online_answers, concurrency=concurrency)
    questions = [dict(q) for q in questions]
    key = spec.key
    if spec.protocol == "standard":
        template, version = load_template("eval_standard")
        prompts = {qa["qa_id"]: standard_prompt(template, qa["question"], qa["options"]) for qa in questions}
        calls, problems = _video_calls(client, {qa["qa_id"]: qa["clip_id"] for qa in questions}, video_of,
                                       prompts.__getitem__, ANSWER_SETTINGS, version)
        got = answer(client, calls, MODEL_STEP)
        rows = []
        for qa in questions:
            qa_id, prompt = qa["qa_id"], prompts[qa["qa_id"]]
            result = got.results.get(qa_id)
            if qa_id in problems:
                rows.append(_row(spec, key, qa, prompt=prompt, note=problems[qa_id]))
            elif qa_id in got.pending:
                rows.append(_pending(spec, key, qa, got.pending[qa_id], prompt=prompt))
            elif isinstance(result, LLMResult):
                rows.append(_row(spec, key, qa, prompt=prompt, reply=result.text, cached=result.cached,
                                 reading=read_standard_reply(result.text, qa["options"], int(qa["answer_index"]))))
            else:
                rows.append(_row(spec, key, qa, prompt=prompt, note=f"{result.kind}: {result.reason}"))
        return pd.DataFrame(rows, columns=ANSWER_COLUMNS)

    if judge is None:
        raise ValueError("the caption protocol needs a judge LLM (the platform's llm resource)")
    caption_template, caption_version = load_template("eval_caption")
    judge_template, judge_version = load_template("eval_caption_judge")
    clip_ids = sorted({q["clip_id"] for q in questions})
    # Round 1: the model captions each clip. Round 2 (only for captions already written): the judge.
    calls, problems = _video_calls(client, {c: c for c in clip_ids}, video_of, lambda _: caption_template,
                                   CAPTION_SETTINGS, caption_version)
    captions = answer(client, calls, MODEL_STEP)
    for clip_id, outcome in captions.results.items():
        if isinstance(outcome, LLMError):
            problems[clip_id] = f"{outcome.kind}: {outcome.reason}"
    written = {c: r for c, r in captions.results.items() if isinstance(r, LLMResult)}
    prompts = {qa["qa_id"]: judge_prompt(judge_template, written[qa["clip_id"]].text, qa["question"], qa["options"])
               for qa in questions if qa["clip_id"] in written}
    judge_calls = {qa_id: judge.text_call(prompt, settings=JUDGE_SETTINGS, prompt_version=judge_version)
                   for qa_id, prompt in prompts.items()}
    judged = answer(judge, judge_calls, JUDGE_STEP) if judge_calls else Answers()
    rows = []
    for qa in questions:
        clip_id, qa_id = qa["clip_id"], qa["qa_id"]
        if clip_id in captions.pending:
            rows.append(_pending(spec, key, qa, captions.pending[clip_id]))
            continue
        if clip_id not in written:
            rows.append(_row(spec, key, qa, note=f"no caption: {problems[clip_id]}"))
            continue
        text = written[clip_id].text
        common = dict(prompt=prompts[qa_id], caption=text, reply=text, judge_model=judge.model,
                      cached=written[clip_id].cached)
        result = judged.results.get(qa_id)
        if qa_id in judged.pending:
            rows.append(_pending(spec, key, qa, judged.pending[qa_id], **common))
        elif isinstance(result, LLMResult):
            rows.append(_row(spec, key, qa, **common, judge_reply=result.text,
                             reading=read_judge_reply(result.text, qa["options"], int(qa["answer_index"]))))
        elif result.kind == "invalid_json":  # the judge answered, but not in the asked shape
            rows.append(_row(spec, key, qa, **common, judge_reply=result.reason, verdict=UNPARSED, note=result.reason))
        else:
            rows.append(_row(spec, key, qa, **common, note=f"judge {result.kind}: {result.reason}"))
    return pd.DataFrame(rows, columns=ANSWER_COLUMNS)
