"""eval_answers (+ eval_results): one evaluated model (an `eval_models` partition) answers every
question of a HAICBench question set under the standard or the caption protocol."""

import pandas as pd
from dagster import MetadataValue
from pydantic import Field

from haic_core.evaluation.models import EvalModel, qa_set_batch
from haic_core.evaluation.protocols import PENDING
from haic_core.evaluation.results import (error_share, error_summary, leaderboard, leaderboard_markdown,
                                          results_table)
from haic_platform.evaluation.registry import eval_models, lookup
from haic_platform.evaluation.runner import clip_video, evaluate, model_client, prompt_versions
from haic_platform.llm_batches import BatchSettings, answer_calls
from haic_assets.platform.partitions import UNPARTITIONED
from haic_platform.stage import StageContext, StageFailure, StageResult, partitioned_stage

EVAL_COLUMN_DOCS = {
    "eval_model": "the model's key in the eval_models registry (the partition)",
    "model": "the evaluated model's name at its provider",
    "provider": "gemini or openai (an OpenAI-compatible server)",
    "protocol": "standard (clip + lettered question) or caption (its caption + a judge LLM)",
    "frames": "frames per clip sent to an OpenAI-compatible server (Gemini takes the whole video)",
    "qa_set": "which questions: split (the HAICBench test split) or verified:<batch> (a batch's verified QA)",
    "qa_id": "the question (haicbench_split.qa_id)",
    "clip_id": "the clip the question is about",
    "category": "interaction, action_details, action_sequence, count or attribute",
    "question": "the question",
    "options": "the options, shown as A, B, C, ...",
    "answer_index": "0-based position of the correct option",
    "answer": "the correct option's letter",
    "prompt": "the prompt the model saw",
    "reply": "the model's raw reply (standard protocol)",
    "caption": "the model's caption (caption protocol)",
    "judge_model": "the LLM that answered from the caption (caption protocol)",
    "judge_reply": "the judge's raw answer",
    "predicted": "the option letter read from the reply (empty: none)",
    "verdict": "correct, wrong, refused (the caption does not mention it), unparsed or error",
    "note": "why a reply was unparsed or an error",
    "correct": "the verdict is correct (eval_results: how many are)",
    "cached": "the answer came from the response cache",
    # eval_results
    "n": "questions of the category",
    "refused": "questions the judge said the caption does not mention (counted wrong)",
    "unparsed": "replies from which no option could be read (counted wrong)",
    "errors": "questions whose call failed (counted wrong)",
    "accuracy": "correct over n, in %",
}


class EvalAnswersConfig(BatchSettings):
    video_root: str = Field(default="", description="folder holding <clip_id>.mp4 (or videos/<clip_id>.mp4) for "
                                                    "clips the platform did not cut itself; '' = only the clips "
                                                    "of action_filtered")
    concurrency: int = Field(default=4, ge=1, description="questions (or clips) in flight at once for this model")
    max_questions: int = Field(default=0, ge=0, description="evaluate only the first N questions (a smoke run); 0 = all")
    timeout_s: float = Field(default=120.0, gt=0.0, description="per request to the evaluated model")
    max_error_share: float = Field(
        default=0.01, ge=0.0, le=1.0,
        description="a failed call counts as a wrong answer, so a larger share of questions in error scores the "
                    "endpoint, not the model: the run warns and `haic evaluate` exits 1 above it (running it again "
                    "asks only the failed calls)")


def question_table(spec: EvalModel) -> tuple[str, str]:
    """(table, partition) holding the questions of `spec.qa_set`."""
    batch = qa_set_batch(spec.qa_set)
    return ("haicbench_split", UNPARTITIONED) if batch is None else ("qa_verified", batch)


def missing_questions(tables, spec: EvalModel) -> str | None:
    """Why `spec.qa_set` has no questions to ask (checked before a model is registered), or None."""
    table, partition = question_table(spec)
    if partition in tables.partitions(table):
        return None
    if table == "haicbench_split":
        return (f"question set {spec.qa_set!r}: there is no HAICBench test split yet; materialize haicbench_split "
                "first, or evaluate on one annotation batch's verified QA (--qa-set verified:BATCH)")
    return (f"question set {spec.qa_set!r}: qa_verified has no partition {partition!r}; materialize qa_verified "
            "for that annotation batch first")


def question_set(stage: StageContext, spec: EvalModel) -> pd.DataFrame:
    """The questions of `spec.qa_set`: the test split, or one annotation batch's verified QA."""
    table, partition = question_table(spec)
    questions = stage.storage.tables().read(table, partition)
    if questions is None:
        raise StageFailure(missing_questions(stage.storage.tables(), spec) or f"{table} {partition!r} is unreadable")
    return questions.sort_values("qa_id").reset_index(drop=True)


def video_locator(stage: StageContext, video_root: str):
    """clip id -> its video file: the platform's own cut clips first, then `video_root`."""
    cut = stage.storage.tables().read_all("action_filtered")
    own = dict(zip(cut["clip_id"], cut["clip_path"])) if len(cut) and "clip_path" in cut else {}

    def locate(clip_id: str):
        from pathlib import Path

        if clip_id in own and Path(own[clip_id]).is_file():
            return Path(own[clip_id])
        return clip_video(video_root, clip_id) if video_root else None

    return locate


@partitioned_stage("eval_answers", EvalAnswersConfig, partitions=eval_models, kind="llm", resources=("llm",),
                   deps=("haicbench_split",), records_decisions=False,
                   outs={"eval_answers": "Per question: the prompt, the model's raw reply (or caption), the judge's "
                                         "raw answer, the option read from it and the verdict (correct, wrong, "
                                         "refused, unparsed, error).",
                         "eval_results": "Per category and on average: n, correct, refused, unparsed, errors and "
                                         "accuracy (%) of this model under its protocol."},
                   fingerprint=lambda config: "+".join(prompt_versions().values()), column_docs=EVAL_COLUMN_DOCS)
def eval_answers(stage: StageContext, config: EvalAnswersConfig) -> StageResult:
    """A model from the eval_models registry answers the HAICBench questions (standard: clip +
    lettered question; caption: its caption + a judge LLM). Every call is cached."""
    try:
        spec = lookup(stage.storage.home, stage.partition_key)
    except KeyError as exc:
        raise StageFailure(str(exc.args[0])) from None
    questions = question_set(stage, spec)
    if config.max_questions:
        questions = questions.head(config.max_questions)
    cache_dir = stage.storage.cache_dir("llm")
    client = model_client(spec, cache_dir, concurrency=config.concurrency, timeout_s=config.timeout_s)
    judge = stage.llm.client() if spec.protocol == "caption" else None  # fails fast: how to configure one
    stage.log.info(f"evaluating {spec.key}: {len(questions)} questions of {spec.qa_set}, protocol {spec.protocol}"
                   + (f", judge {judge.model}" if judge else ""))
    batches = []

    def answer(llm_client, calls, step):  # online, or through batch jobs: llm_mode
        got = answer_calls(stage, llm_client, calls, config, step=step)
        batches.append(got.summary())
        return got

    online = config.llm_mode == "online"
    answers = evaluate(spec, questions.to_dict("records"), video_locator(stage, config.video_root), client, judge,
                       answer=answer, retry_malformed=online, progress=stage.progress if online else None)
    failures, share = error_summary(answers), error_share(answers)
    if failures:
        (stage.log.warning if share > config.max_error_share else stage.log.info)(
            f"{spec.key}: {failures}" + (f"; above max_error_share {100 * config.max_error_share:g} %"
                                         if share > config.max_error_share else ""))
    pending = int((answers["verdict"] == PENDING).sum())
    # Scored only once every question is answered: a partial score would read as the model's.
    results = results_table(answers.head(0) if pending else answers)
    if pending:
        stage.log.info(f"{pending} of {len(answers)} questions wait in batch jobs; eval_results is written "
                       "when the llm_batch_sensor has ingested them")
    board = leaderboard(results, with_reference=False)
    usage = client.usage_snapshot()
    judge_usage = judge.usage_snapshot() if judge else {"calls": 0, "cost_usd": 0.0}
    metadata = {"questions": len(answers), "verdicts": MetadataValue.json(answers["verdict"].value_counts().to_dict()),
                "leaderboard_row": MetadataValue.md(leaderboard_markdown(board)),
                "model_calls": usage["calls"], "model_cache_hits": usage["cache_hits"],
                "model_cost_usd": float(usage["cost_usd"]), "judge_calls": judge_usage["calls"],
                "judge_cost_usd": float(judge_usage["cost_usd"]), "questions_pending": pending,
                "error_share": round(share, 4), "errors": MetadataValue.text(failures or "none"),
                **{k: sum(b[k] for b in batches) for k in (batches[0] if batches else {})}}
    return StageResult(tables={"eval_answers": answers, "eval_results": results}, metadata=metadata,
                       preview=["qa_id", "category", "answer", "predicted", "verdict", "reply"])
