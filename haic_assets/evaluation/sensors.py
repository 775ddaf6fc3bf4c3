"""eval_batch_sensor: polls the batch jobs of evaluations run in batch mode; a finished job
becomes a run of `evaluate_model` for its eval model, which ingests it.

Two steps submit jobs: `eval_answers` (the evaluated model's answers, or its captions under the
caption protocol), polled with that model's own client from the registry, and `eval_judge` (the
caption protocol's judge, the platform's LLM backend). The judge's jobs are written by the run
that ingests the captions, so a caption-protocol evaluation takes two rounds of jobs.
"""

from haic_assets.evaluation.jobs import EVALUATE_MODEL_JOB
from haic_platform.evaluation.registry import lookup
from haic_platform.evaluation.runner import JUDGE_STEP, MODEL_STEP, model_client
from haic_assets.platform.llm_batch_sensor import build_llm_batch_sensor, platform_client

EVAL_ASSETS = ("eval_answers", "eval_results")


def eval_client(storage, llm, step: str, partition: str):
    """The evaluated model's client for its answers or captions; the platform's for the judge."""
    if step == JUDGE_STEP:
        return platform_client(storage, llm, step, partition)
    return model_client(lookup(storage.home, partition), storage.cache_dir("llm"))


eval_batch_sensor = build_llm_batch_sensor("eval_batch_sensor", EVALUATE_MODEL_JOB,
                                           {MODEL_STEP: EVAL_ASSETS, JUDGE_STEP: EVAL_ASSETS}, client_for=eval_client)
