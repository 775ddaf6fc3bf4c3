"""Captions through batch jobs, driven as a deployment runs them: a settings file that says
`llm_mode: batch`, the real google-genai / openai clients against local servers that speak the
batch endpoints, the llm_batch_sensor evaluated on a real instance, and the runs it requests."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import AssetKey, SensorResult, SkipReason, build_sensor_context

from haic_assets.definitions import build_definitions
from haic_cli.main import main
from haic_assets.platform.llm_batch_sensor import llm_batch_sensor
from tests.helpers import dagster_instance, ledger, run_partition, without_llm
from tests.llm_servers import SMALL_CLIP, BatchPlan, FakeGeminiServer, FakeOpenAIServer
from tests.test_captions_pipeline import GOOD_CAPTION

pytestmark = pytest.mark.slow

PARTITION = "webvid__batch200.csv"
SECRET = "AIzaTEST-batch-secret-0123456789"
FLAKY = "[flaky]"  # the items whose first batch answer is an error
# 1,200 input and 150 output tokens per answer (the fake's usage) at $1.25 / $10 per million:
ONLINE_PRICE = (1200 * 1.25 + 150 * 10.0) / 1e6  # 0.003
BATCH_PRICE = ONLINE_PRICE / 2  # the default batch discount, 50 %


def land_clips(defs, clip_path, n: int, flaky: int) -> None:
    """`n` filtered clips of one partition, as action_filtered writes them; the first `flaky`
    have descriptions that the fake batch job fails the first time."""
    rows = [{"clip_id": f"webvid:{i}-0", "video_id": f"webvid:{i}", "clip_key": f"k{i}", "clip_path": str(clip_path),
             "description": f"A person waves at the camera, take {i:03d}" + (f" {FLAKY}" if i < flaky else "")}
            for i in range(n)]
    defs.resources["storage"].tables().write("action_filtered", PARTITION, pd.DataFrame(rows))


def batch_home(tmp_path, monkeypatch, settings: str):
    home = tmp_path / "home"
    home.mkdir()
    (home / "settings.yaml").write_text(settings)
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    monkeypatch.setenv("HAIC_LLM_INPUT_PRICE", "1.25")
    monkeypatch.setenv("HAIC_LLM_OUTPUT_PRICE", "10")
    return home


def poll(defs, instance):
    with build_sensor_context(instance=instance, resources={"storage": defs.resources["storage"],
                                                            "llm": defs.resources["llm"]}) as context:
        return llm_batch_sensor(context)


def run_request(defs, instance, request):
    job = defs.resolve_job_def("curate_source")
    result = job.execute_in_process(partition_key=request.partition_key, instance=instance, raise_on_error=False,
                                    asset_selection=request.asset_selection, run_config=request.run_config,
                                    tags=request.tags)
    assert result.success
    return result


def run_partition_with(defs, instance, run_config):
    result = defs.resolve_job_def("curate_source").execute_in_process(
        partition_key=PARTITION, instance=instance, raise_on_error=False, asset_selection=[AssetKey("captions")],
        run_config=run_config)
    assert result.success
    return result


def captions_meta(result):
    return next(e.event_specific_data.materialization.metadata for e in result.all_events
                if e.is_step_materialization and e.event_specific_data.materialization.asset_key == AssetKey("captions"))


def test_200_clips_through_a_gemini_batch_job_190_answered_10_retried_once_a_rerun_sends_nothing(
        tmp_path, monkeypatch, video, capsys):
    home = batch_home(tmp_path, monkeypatch, "captions: {llm_mode: batch}\n")
    with FakeGeminiServer(GOOD_CAPTION) as server:
        monkeypatch.setenv("GEMINI_API_KEY", SECRET)
        monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
        # the 200 videos are over Gemini's 20 MB inline limit: one job, its requests a JSONL file
        server.script_batch(BatchPlan(fail_markers=(FLAKY,)))
        defs = build_definitions()
        tables = defs.resources["storage"].tables()
        land_clips(defs, video(SMALL_CLIP), 200, flaky=10)
        with dagster_instance(home) as instance:
            # run 1 submits; it does not wait
            first = run_partition(defs, instance, PARTITION, selection=[AssetKey("captions")])
            assert first.success
            assert server.batch_items == 200 and server.requests["generateContent"] == 0
            first_jobs = set(server.batch_jobs)
            assert len(first_jobs) == 1 and server.requests["batch.input_file"] == 1
            assert captions_meta(first)["batch_pending"].value == 200
            requests = tables.read("llm_batch_requests", f"captions__{PARTITION}")
            assert requests["state"].tolist() == ["submitted"] * 200
            assert set(requests["job_id"]) == set(server.batch_jobs)
            assert len(tables.read("captions", PARTITION)) == 0
            # pending: no verdict yet, but a ledger row saying where the item is (haic why, the funnel)
            waiting = ledger(home).query("stage == 'captions'")
            assert waiting["verdict"].tolist() == ["pending"] * 200
            assert set(waiting["reason_code"]) == {"batch_pending"}
            assert set(waiting["reason"]) == {f"in batch job {job}" for job in first_jobs}
            assert main(["why", "webvid:7-0"]) == 0
            why = capsys.readouterr().out
            assert "PENDING" in why and "batch_pending: in batch job batches/" in why
            assert main(["funnel"]) == 0
            funnel = capsys.readouterr().out.splitlines()
            header = next(line.split() for line in funnel if "pending" in line.split())
            row = next(line.split() for line in funnel if " captions " in f" {line} ")
            assert dict(zip(header, row))["pending"] == "200" and dict(zip(header, row))["kept"] == "0"
            # switched to online meanwhile: what is in a job is not asked (nor paid) twice
            online = run_partition_with(defs, instance, {"ops": {"captions": {"config": {"llm_mode": "online"}}}})
            assert captions_meta(online)["batch_pending"].value == 200
            assert server.requests["generateContent"] == 0

            # the sensor sees both jobs done: one ingest run for the partition
            tick = poll(defs, instance)
            assert isinstance(tick, SensorResult) and len(tick.run_requests) == 1
            request = tick.run_requests[0]
            assert request.partition_key == PARTITION
            assert request.run_key == f"llm_batch:captions:{PARTITION}:{','.join(sorted(server.batch_jobs))}"
            second = run_request(defs, instance, request)
            table = tables.read("captions", PARTITION)
            assert len(table) == 190 and not table["cached"].any()
            assert table["cost_usd"].tolist() == pytest.approx([BATCH_PRICE] * 190)
            assert captions_meta(second)["cost_usd"].value == pytest.approx(190 * BATCH_PRICE)
            assert set(table["batch_job"]) == first_jobs
            book = ledger(home)
            kept = book[(book["stage"] == "captions") & (book["verdict"] == "kept")]
            assert len(kept) == 190 and kept["reason"].eq("captioned (batch)").all()
            assert (book.query("stage == 'captions'")["verdict"] == "pending").sum() == 10  # no duplicate rows
            # the 10 failures went into one new job (their second and last round)
            assert server.batch_items == 210 and len(server.batch_jobs) == 2
            requests = tables.read("llm_batch_requests", f"captions__{PARTITION}")
            assert requests.groupby("state").size().to_dict() == {"answered": 190, "failed": 10, "submitted": 10}
            retried = requests[requests["state"] == "submitted"]
            assert retried["round"].tolist() == [2] * 10
            assert sorted(retried["item_id"]) == sorted(f"webvid:{i}-0" for i in range(10))  # exactly the flaky ones

            tick = poll(defs, instance)
            third = run_request(defs, instance, tick.run_requests[0])
            table = tables.read("captions", PARTITION)
            assert len(table) == 200 and int(table["cached"].sum()) == 190
            assert captions_meta(third)["cost_usd"].value == pytest.approx(10 * BATCH_PRICE)
            book = ledger(home)
            assert book[book["stage"] == "captions"]["verdict"].tolist() == ["kept"] * 200
            assert server.batch_items == 210 and server.requests["generateContent"] == 0

            # the warehouse answers "which job answered what" in SQL
            import duckdb

            with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as con:
                states = con.execute("SELECT state, count(*) FROM llm_batch_requests WHERE stage = 'captions' "
                                     "GROUP BY state ORDER BY state").fetchall()
            assert states == [("answered", 200), ("failed", 10)]

            # nothing is open; a re-run of the partition sends nothing at all
            assert isinstance(poll(defs, instance), SkipReason)
            sent = server.total_requests
            again = run_partition(defs, instance, PARTITION, selection=[AssetKey("captions")])
            assert again.success and server.total_requests == sent
            assert captions_meta(again)["cache_hits"].value == 200
            assert captions_meta(again)["cost_usd"].value == 0.0


def test_an_expired_openai_batch_job_falls_back_to_online_calls_by_setting(tmp_path, monkeypatch, video):
    home = batch_home(tmp_path, monkeypatch, "captions: {llm_mode: batch, batch_fallback: online}\n")
    with FakeOpenAIServer(GOOD_CAPTION) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.base_url}/v1")
        monkeypatch.setenv("HAIC_LLM_MODEL", "gpt-4o")
        server.script_batch(BatchPlan(end="expired", answered_before_expiry=15, polls_until_done=2))
        defs = build_definitions()
        land_clips(defs, video(SMALL_CLIP), 20, flaky=0)
        with dagster_instance(home) as instance:
            assert run_partition(defs, instance, PARTITION, selection=[AssetKey("captions")]).success
            assert server.requests["files.create"] == 1 and server.batch_items == 20
            assert isinstance(poll(defs, instance), SkipReason)  # still in progress
            tick = poll(defs, instance)
            run_request(defs, instance, tick.run_requests[0])
        table = defs.resources["storage"].tables().read("captions", PARTITION).sort_values("clip_id")
        assert len(table) == 20
        assert server.requests["chat.completions"] == 5  # the 5 expired items, asked online
        assert sorted(table["cost_usd"].round(6).tolist()) == [BATCH_PRICE] * 15 + [ONLINE_PRICE] * 5
        requests = defs.resources["storage"].tables().read("llm_batch_requests", f"captions__{PARTITION}")
        assert requests.groupby("state").size().to_dict() == {"answered": 15, "expired": 5, "online_answered": 5}


def test_qa_generation_goes_through_an_openai_batch_job_too(tmp_path, monkeypatch, media_dir):
    from haic_assets.platform.llm_batch_sensor import qa_batch_sensor
    from tests.bench_samples import export_sample_task
    from tests.test_haicbench_assets import BATCH, annotation_keys, fake_qa_answer, land_batch, run_batch

    home = batch_home(tmp_path, monkeypatch, "qa_pairs: {llm_mode: batch}\n")
    land_batch(home, with_raw=False, with_reviews=False)
    export_sample_task(build_definitions().resources["storage"], media_dir)  # captions name the task's clips
    with FakeOpenAIServer(fake_qa_answer) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.base_url}/v1")
        defs = build_definitions()
        tables = defs.resources["storage"].tables()
        with dagster_instance(home) as instance:
            assert run_batch(defs, instance, selection=annotation_keys("bench_captions", "qa_pairs")).success
            assert len(tables.read("qa_pairs", BATCH)) == 0
            assert server.batch_items == 13 and server.requests["chat.completions"] == 0
            with build_sensor_context(instance=instance, resources={"storage": defs.resources["storage"],
                                                                    "llm": defs.resources["llm"]}) as context:
                tick = qa_batch_sensor(context)
            [request] = tick.run_requests
            assert request.partition_key == BATCH and request.asset_selection == [AssetKey("qa_pairs")]
            result = defs.resolve_job_def("haicbench_batch").execute_in_process(
                partition_key=BATCH, instance=instance, run_config=request.run_config,
                asset_selection=request.asset_selection)
            assert result.success
        qa = tables.read("qa_pairs", BATCH)
        assert len(qa) == 13 and not qa["cached"].any()
        assert server.requests["chat.completions"] == 0  # every answer came from the batch job
