"""Evaluating one model on a set of HAICBench questions: the calls, then the per-QA answer rows.

Shared by the `eval_answers` asset and `haic evaluate`. Every call goes through an `LLMClient`,
so it is retried, rate-limited and cached under HAIC_HOME/cache/llm: re-scoring a model (a new
reading of its replies, a new judge) never pays for the same call twice. The calls are built
first (`video_call`, `text_call`: one cache key whichever way they are answered), then answered
round by round, online or through batch jobs (haic_platform/llm_batches.py).

A reply the provider sent malformed (an unreadable body, a judge's answer that is not the JSON it
was asked for) is asked once more, never twice: answers are cached only when usable, so the
retry pays for the malformed calls alone. A reply that is well formed but names no option is the
model's answer (unparsed, counted wrong, as in the paper's protocol): it is cached and not asked
again. Online rounds report their progress; the client's one warning per failed call is held
back while a model is evaluated, and `error_summary` (haic_core/evaluation/results.py) says what
failed, grouped by kind, in one line.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
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
from haic_platform.llm_batches import Answers

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
Progress = Callable[[str], Callable[[int, int], None]]  # what is counted -> progress(done, total)
# Failures where the provider answered, but not in a shape we can read: worth one more request.
MALFORMED_KINDS = frozenset({"malformed_response", "invalid_json"})
CLIENT_LOGGER = "haic_resources.llm.client"


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


class _CountedClient:
    """The client, reporting each call it has answered (or failed, or found in the cache)."""

    def __init__(self, client: LLMClient, total: int, progress: Callable[[int, int], None]):
        self._client, self._total, self._progress = client, total, progress
        self._done = 0
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def answer(self, call: PreparedCall):
        try:
            return self._client.answer(call)
        finally:
            with self._lock:
                self._done += 1
                self._progress(self._done, self._total)


def _ask(answer: Answerer, client: LLMClient, calls: dict[str, PreparedCall], step: str, what: str, *,
         retry_malformed: bool, progress: Progress | None) -> Answers:
    """One round's calls answered, with its progress; the malformed ones asked once more."""
    counted = _CountedClient(client, len(calls), progress(what)) if progress is not None and calls else client
    got = answer(counted, calls, step)
    again = {item: calls[item] for item, outcome in got.results.items()
             if isinstance(outcome, LLMError) and outcome.kind in MALFORMED_KINDS}
    if retry_malformed and again:
        got.results.update(answer(client, again, step).results)
    return got


class _DropWarnings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.WARNING


@contextmanager
def failures_held_back() -> Iterator[None]:
    """Without the client's warning per failed call (2,000 questions would make 2,000 lines on
    stderr): the rows keep each failure, and `error_summary` groups them."""
    logger, held = logging.getLogger(CLIENT_LOGGER), _DropWarnings()
    logger.addFilter(held)
    try:
        yield
    finally:
        logger.removeFilter(held)


def evaluate(spec: EvalModel, questions: Sequence[dict[str, Any]], video_of: Callable[[str], Path | None],
             client: LLMClient, judge: LLMClient | None = None, *, concurrency: int = 4,
             answer: Answerer | None = None, retry_malformed: bool = True,
             progress: Progress | None = None) -> pd.DataFrame:
    """One row per question (ANSWER_COLUMNS): what was asked, the raw replies, the reading and the
    verdict. A missing clip or a failed call is that question's `error` (counted wrong); a question
    whose call waits in a batch job is `pending`. `answer` answers one round's calls (online by
    default; the stage passes `answer_calls`, online or through batch jobs, whose own rounds
    retry a failed batch item: `retry_malformed` off there). `progress(what)` gives the progress
    callback of a round ("model answers", "captions", "judge answers")."""
    with failures_held_back():
        return _evaluate(spec, [dict(q) for q in questions], video_of, client, judge,
                         partial(_ask, answer or partial(online_answers, concurrency=concurrency),
                                 retry_malformed=retry_malformed, progress=progress))


def _evaluate(spec: EvalModel, questions: list[dict[str, Any]], video_of: Callable[[str], Path | None],
              client: LLMClient, judge: LLMClient | None, ask: Callable[..., Answers]) -> pd.DataFrame:
    key = spec.key
    if spec.protocol == "standard":
        template, version = load_template("eval_standard")
        prompts = {qa["qa_id"]: standard_prompt(template, qa["question"], qa["options"]) for qa in questions}
        calls, problems = _video_calls(client, {qa["qa_id"]: qa["clip_id"] for qa in questions}, video_of,
                                       prompts.__getitem__, ANSWER_SETTINGS, version)
        got = ask(client, calls, MODEL_STEP, "model answers")
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
    captions = ask(client, calls, MODEL_STEP, "captions")
    for clip_id, outcome in captions.results.items():
        if isinstance(outcome, LLMError):
            problems[clip_id] = f"{outcome.kind}: {outcome.reason}"
    written = {c: r for c, r in captions.results.items() if isinstance(r, LLMResult)}
    prompts = {qa["qa_id"]: judge_prompt(judge_template, written[qa["clip_id"]].text, qa["question"], qa["options"])
               for qa in questions if qa["clip_id"] in written}
    judge_calls = {qa_id: judge.text_call(prompt, settings=JUDGE_SETTINGS, prompt_version=judge_version)
                   for qa_id, prompt in prompts.items()}
    judged = ask(judge, judge_calls, JUDGE_STEP, "judge answers") if judge_calls else Answers()
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
