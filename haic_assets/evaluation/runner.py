"""Evaluating one model on a set of HAICBench questions: the calls, then the per-QA answer rows.

Shared by the `eval_answers` asset and `haic evaluate`. Every call goes through an `LLMClient`,
so it is retried, rate-limited and cached under HAIC_HOME/cache/llm: re-scoring a model (a new
reading of its replies, a new judge) never pays for the same call twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from haic_core.evaluation.models import EvalModel
from haic_core.evaluation.protocols import (ERROR, UNPARSED, Reading, judge_prompt, read_judge_reply,
                                            read_standard_reply, standard_prompt)
from haic_core.evaluation.results import ANSWER_COLUMNS
from haic_core.haic_train.export import clip_file_name
from haic_core.haicbench.lmms_eval_utils import LETTERS
from haic_resources.llm.client import LLMClient
from haic_resources.llm.concurrency import map_concurrent
from haic_resources.llm.prompts import load_template
from haic_resources.llm.resource import LLMResource
from haic_resources.llm.types import GenerationSettings, LLMError

# Greedy decoding (the paper); a letter needs few tokens, a caption many.
ANSWER_SETTINGS = GenerationSettings(temperature=0.0, max_output_tokens=64)
CAPTION_SETTINGS = GenerationSettings(temperature=0.0, max_output_tokens=1024)
JUDGE_SETTINGS = GenerationSettings(temperature=0.0, max_output_tokens=128)
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v")
KEY_ENV = {"gemini": "GEMINI_API_KEY", "openai": "OPENAI_API_KEY"}
BASE_URL_ENV = {"gemini": "GEMINI_BASE_URL", "openai": "OPENAI_BASE_URL"}  # where an entry names none


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
                           openai_send_video_url=spec.video_input == "video_url")
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


def evaluate(spec: EvalModel, questions: Sequence[dict[str, Any]], video_of: Callable[[str], Path | None],
             client: LLMClient, judge: LLMClient | None = None, *, concurrency: int = 4) -> pd.DataFrame:
    """One row per question (ANSWER_COLUMNS): what was asked, the raw replies, the reading and the
    verdict. A missing clip or a failed call is that question's `error` (counted wrong)."""
    questions = [dict(q) for q in questions]
    key = spec.key
    if spec.protocol == "standard":
        template, version = load_template("eval_standard")

        def ask(qa: dict[str, Any]) -> dict[str, Any]:
            prompt = standard_prompt(template, qa["question"], qa["options"])
            path = video_of(qa["clip_id"])
            if path is None:
                return _row(spec, key, qa, prompt=prompt, note=f"clip video not found for {qa['clip_id']}")
            result = client.caption_video(path, prompt, settings=ANSWER_SETTINGS, prompt_version=version)
            return _row(spec, key, qa, prompt=prompt, reply=result.text, cached=result.cached,
                        reading=read_standard_reply(result.text, qa["options"], int(qa["answer_index"])))

        outcomes = map_concurrent(ask, questions, concurrency)
        rows = [o.value if o.ok else _row(spec, key, o.item, note=f"{o.error.kind}: {o.error.reason}")
                for o in outcomes]
        return pd.DataFrame(rows, columns=ANSWER_COLUMNS)

    if judge is None:
        raise ValueError("the caption protocol needs a judge LLM (the platform's llm resource)")
    caption_template, caption_version = load_template("eval_caption")
    judge_template, judge_version = load_template("eval_caption_judge")
    clip_ids = sorted({q["clip_id"] for q in questions})

    def caption(clip_id: str) -> tuple[str | None, bool, str]:
        path = video_of(clip_id)
        if path is None:
            return None, False, f"clip video not found for {clip_id}"
        result = client.caption_video(path, caption_template, settings=CAPTION_SETTINGS,
                                      prompt_version=caption_version)
        return result.text, result.cached, ""

    captions = {}
    for outcome in map_concurrent(caption, clip_ids, concurrency):
        captions[outcome.item] = outcome.value if outcome.ok else (None, False, f"{outcome.error.kind}: "
                                                                                 f"{outcome.error.reason}")

    def judged(qa: dict[str, Any]) -> dict[str, Any]:
        text, cached, problem = captions[qa["clip_id"]]
        if text is None:
            return _row(spec, key, qa, note=f"no caption: {problem}")
        prompt = judge_prompt(judge_template, text, qa["question"], qa["options"])
        common = dict(prompt=prompt, caption=text, reply=text, judge_model=judge.model, cached=cached)
        try:
            result = judge.complete_json(prompt, settings=JUDGE_SETTINGS, prompt_version=judge_version)
        except LLMError as exc:
            if exc.kind == "invalid_json":  # the judge answered, but not in the asked shape
                return _row(spec, key, qa, **common, judge_reply=exc.reason, verdict=UNPARSED, note=exc.reason)
            raise
        return _row(spec, key, qa, **common, judge_reply=result.text,
                    reading=read_judge_reply(result.text, qa["options"], int(qa["answer_index"])))

    outcomes = map_concurrent(judged, questions, concurrency)
    rows = [o.value if o.ok else _row(spec, key, o.item, note=f"judge {o.error.kind}: {o.error.reason}")
            for o in outcomes]
    return pd.DataFrame(rows, columns=ANSWER_COLUMNS)
