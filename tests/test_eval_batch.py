"""HAICBench evaluation through batch jobs, driven as a user runs it: `haic evaluate --batch` (or the
`eval_answers: {llm_mode: batch}` setting), the real openai SDK against the local fake server's Batch
API, the eval_batch_sensor evaluated on a real instance, and the runs it requests. The scores must be
exactly those of an online run on the same fake answers."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from dagster import AssetKey, SensorResult, SkipReason, build_sensor_context

from haic_core.evaluation.models import EvalModel
from haic_core.haicbench.lmms_eval_utils import LETTERS
from haic_assets.definitions import build_definitions
from haic_assets.evaluation.jobs import EVALUATE_MODEL_JOB
from haic_platform.evaluation.registry import lookup, register
from haic_assets.evaluation.sensors import eval_batch_sensor
from haic_cli.main import main
from tests.helpers import dagster_instance, without_llm
from tests.llm_servers import SMALL_CLIP, BatchPlan, FakeOpenAIServer, prompt_text_of
from tests.test_evaluation import clip_folder, small_split

pytestmark = pytest.mark.slow

N = 24  # questions asked (max_questions): the first of the 60-question split, all five categories
FLAKY = "(synthetic v8 q"  # the questions about video 8: their first batch answer is an error
COUNTS = ["category", "n", "correct", "refused", "unparsed", "errors", "accuracy"]
# The judge's price (the platform LLM): the fake reports 1,200 input and 100 output tokens per answer.
ONLINE_PRICE = (1200 * 1.25 + 100 * 10.0) / 1e6
BATCH_PRICE = ONLINE_PRICE / 2
# The evaluated model's price, given on the command line: 1,200 input and 1 output token per answer.
MODEL_ONLINE_PRICE = (1200 * 2.0 + 1 * 8.0) / 1e6


def new_home(tmp_path, monkeypatch, name: str, settings: str = ""):
    home = tmp_path / name
    home.mkdir()
    (home / "settings.yaml").write_text(settings)
    monkeypatch.setenv("HAIC_HOME", str(home))
    return home


def the_split(home, tmp_path, video):
    split = small_split()
    build_definitions().resources["storage"].tables().write("haicbench_split", "all", split)
    return split, clip_folder(tmp_path / "media", split["clip_id"], video(SMALL_CLIP))


def standard_reply(split):
    """Right on count and attribute questions, "C" on the rest."""
    by_question = split.set_index("question")

    def reply(body):
        text = prompt_text_of(body)
        question = next(q for q in by_question.index if q in text)
        row = by_question.loc[question]
        return LETTERS[int(row["answer_index"])] if row["category"] in ("count", "attribute") else "C"

    return reply


def caption_reply(split):
    """The model's caption is one fixed text; the judge answers count questions right, says the caption
    does not mention attributes, and answers "B" to the rest."""
    by_question = split.set_index("question")

    def reply(body):
        text = prompt_text_of(body)
        if "Description:" not in text:
            return "There is 1 subject in the video. The subject moves."
        row = by_question.loc[next(q for q in by_question.index if f"Question: {q}\n" in text)]
        if row["category"] == "count":
            return json.dumps({"answer": LETTERS[int(row["answer_index"])]})
        return json.dumps({"answer": "not mentioned" if row["category"] == "attribute" else "B"})

    return reply


def poll(defs, instance):
    with build_sensor_context(instance=instance, resources={"storage": defs.resources["storage"],
                                                            "llm": defs.resources["llm"]}) as context:
        return eval_batch_sensor(context)


def run_eval(defs, instance, key, run_config):
    run = defs.resolve_job_def(EVALUATE_MODEL_JOB).execute_in_process(
        partition_key=key, instance=instance, raise_on_error=False, run_config=run_config)
    assert run.success
    return run


def ingest(defs, instance, key):
    """One sensor tick that sees the partition's jobs ended, and the run it requests."""
    tick = poll(defs, instance)
    assert isinstance(tick, SensorResult), tick
    [request] = tick.run_requests
    assert request.partition_key == key
    assert request.asset_selection == [AssetKey("eval_answers"), AssetKey("eval_results")]
    run = defs.resolve_job_def(EVALUATE_MODEL_JOB).execute_in_process(
        partition_key=key, instance=instance, raise_on_error=False, run_config=request.run_config,
        asset_selection=request.asset_selection, tags=request.tags)
    assert run.success
    return run


def eval_meta(run):
    return {k: v.value for e in run.all_events if e.is_step_materialization
            and e.event_specific_data.materialization.asset_key == AssetKey("eval_answers")
            for k, v in e.event_specific_data.materialization.metadata.items()}


def tables_of(key):
    tables = build_definitions().resources["storage"].tables()
    return tables, tables.read("eval_results", key), tables.read("eval_answers", key)


def test_standard_protocol_through_a_batch_job_scores_exactly_as_online_failed_items_fall_back_online(
        tmp_path, monkeypatch, video, capsys):
    without_llm(monkeypatch)
    split = small_split()
    flaky = int(split.head(N)["question"].str.contains(FLAKY, regex=False).sum())
    assert 0 < flaky < N
    with FakeOpenAIServer(standard_reply(split), output_tokens=1) as server:
        spec = EvalModel(model="fake-vlm", base_url=f"{server.base_url}/v1", frames=2)
        # the online run: the reference scores
        online_home = new_home(tmp_path, monkeypatch, "online")
        _, root = the_split(online_home, tmp_path, video)
        defs = build_definitions()
        with dagster_instance(online_home) as instance:
            key = register(online_home, spec, instance)
            run_eval(defs, instance, key, {"ops": {"eval_answers": {"config": {"video_root": str(root),
                                                                                "max_questions": N}}}})
        _, online, online_answers = tables_of(key)
        assert server.requests["chat.completions"] == N and server.batch_items == 0

        server.reset_counts()
        home = new_home(tmp_path, monkeypatch, "batch", "eval_answers: {batch_fallback: online}\n")
        the_split(home, tmp_path, video)
        server.script_batch(BatchPlan(fail_markers=(FLAKY,)))
        command = ["evaluate", "--model", "fake-vlm", "--base-url", f"{server.base_url}/v1", "--frames", "2",
                   "--video-root", str(root), "--max-questions", str(N), "--batch",
                   "--input-price", "2", "--output-price", "8"]
        assert main(command) == 0
        [job] = server.batch_jobs
        assert f"{N} of {N} questions wait in batch job(s) {job}" in capsys.readouterr().out
        assert server.batch_items == N and server.requests["chat.completions"] == 0  # submitted, not asked
        tables, results, answers = tables_of(key)
        assert len(results) == 0  # no partial score
        assert answers["verdict"].tolist() == ["pending"] * N
        assert set(answers["note"]) == {f"batch_pending: in batch job {job}"}
        requests = tables.read("llm_batch_requests", f"eval_answers__{key}")
        assert requests["state"].tolist() == ["submitted"] * N and set(requests["job_id"]) == {job}

        defs = build_definitions()
        with dagster_instance(home) as instance:
            run = ingest(defs, instance, key)  # the run repeats the CLI's video folder
            assert isinstance(poll(defs, instance), SkipReason)
        meta = eval_meta(run)
        assert meta["batch_answered"] == N - flaky and meta["questions_pending"] == 0
        # the registered prices: batch answers at the batch discount, the failed ones online at full price
        assert meta["model_cost_usd"] == pytest.approx(
            (N - flaky) * MODEL_ONLINE_PRICE / 2 + flaky * MODEL_ONLINE_PRICE)
        assert server.requests["chat.completions"] == flaky  # the failed items, asked online by setting
        tables, results, answers = tables_of(key)
        requests = tables.read("llm_batch_requests", f"eval_answers__{key}")
        assert requests.groupby("state").size().to_dict() == {"answered": N - flaky, "failed": flaky,
                                                             "online_answered": flaky}
        assert answers["reply"].tolist() == online_answers["reply"].tolist()
        pd.testing.assert_frame_equal(results[COUNTS], online[COUNTS])
        assert results.set_index("category").loc["count", "accuracy"] == 100.0

        # a re-run sends nothing and prints the same scores; without price flags it keeps the registered ones
        sent = server.total_requests
        assert main([c for c in command[:-5] if c != "--batch"]) == 0
        assert lookup(home, key).input_price_per_million == 2.0
        assert server.total_requests == sent
        out = capsys.readouterr().out
        assert "ours (fake-vlm__standard__f2)" in out and "wait in batch" not in out


def test_caption_protocol_takes_two_rounds_of_batch_jobs_and_scores_exactly_as_online(
        tmp_path, monkeypatch, video):
    """Round 1: the evaluated model captions each clip in a batch job; round 2, written only when the
    captions are in: the judge's questions, in a job of their own, whose failed items go into a new job."""
    without_llm(monkeypatch)
    split = small_split()
    asked = split.head(N)
    flaky, clips = int(asked["question"].str.contains(FLAKY, regex=False).sum()), asked["clip_id"].nunique()
    with FakeOpenAIServer(caption_reply(split), output_tokens=100) as server:
        monkeypatch.setenv("HAIC_LLM_PROVIDER", "openai")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.base_url}/v1")
        monkeypatch.setenv("HAIC_LLM_MODEL", "judge-model")
        monkeypatch.setenv("HAIC_LLM_INPUT_PRICE", "1.25")
        monkeypatch.setenv("HAIC_LLM_OUTPUT_PRICE", "10")
        spec = EvalModel(model="fake-vlm", protocol="caption", base_url=f"{server.base_url}/v1", frames=2)
        online_home = new_home(tmp_path, monkeypatch, "online")
        _, root = the_split(online_home, tmp_path, video)
        config = {"ops": {"eval_answers": {"config": {"video_root": str(root), "max_questions": N}}}}
        defs = build_definitions()
        with dagster_instance(online_home) as instance:
            key = register(online_home, spec, instance)
            assert eval_meta(run_eval(defs, instance, key, config))["judge_cost_usd"] == pytest.approx(
                N * ONLINE_PRICE)
        _, online, _ = tables_of(key)
        assert server.requests["chat.completions"] == clips + N  # a caption per clip, a judge answer per question

        server.reset_counts()
        home = new_home(tmp_path, monkeypatch, "batch", "eval_answers: {llm_mode: batch}\n")
        the_split(home, tmp_path, video)
        server.script_batch(BatchPlan(), BatchPlan(fail_markers=(FLAKY,)))
        defs = build_definitions()
        with dagster_instance(home) as instance:
            register(home, spec, instance)
            run_eval(defs, instance, key, config)
            assert server.batch_items == clips  # the captions only: the judge needs them first
            tables, results, answers = tables_of(key)
            assert len(results) == 0 and set(answers["verdict"]) == {"pending"}

            ingest(defs, instance, key)  # the captions are in: the judge's questions go out
            assert server.batch_items == clips + N and len(server.batch_jobs) == 2
            judge_requests = tables.read("llm_batch_requests", f"eval_judge__{key}")
            assert judge_requests["state"].tolist() == ["submitted"] * N
            assert len(tables_of(key)[1]) == 0

            ingest(defs, instance, key)  # the flaky ones failed: a new judge job, their second round
            assert server.batch_items == clips + N + flaky and len(server.batch_jobs) == 3
            third = ingest(defs, instance, key)
            assert isinstance(poll(defs, instance), SkipReason)
        assert server.requests["chat.completions"] == 0  # everything through batch jobs
        assert eval_meta(third)["judge_cost_usd"] == pytest.approx(flaky * BATCH_PRICE)
        tables, results, answers = tables_of(key)
        judge_requests = tables.read("llm_batch_requests", f"eval_judge__{key}")
        assert judge_requests.groupby("state").size().to_dict() == {"answered": N, "failed": flaky}
        pd.testing.assert_frame_equal(results[COUNTS], online[COUNTS])
        assert results.set_index("category").loc["attribute", "refused"] == (asked["category"] == "attribute").sum() > 0

        sent = server.total_requests
        with dagster_instance(home) as instance:
            meta = eval_meta(run_eval(defs, instance, key, config))
        assert server.total_requests == sent and meta["judge_cost_usd"] == 0.0
