"""A batch job is paid once, driven as a deployment runs it: a settings file that says
`llm_mode: batch`, the real google-genai client against a local server speaking Gemini's batch
endpoints, the caption runs on a real instance and the llm_batch_sensor's ticks.

- A run killed (SIGKILL, a real process) after the provider made its job and before it wrote the
  job down leaves an intent; the sensor asks for a run that finds the job by it and adopts it.
- With no list grace (`batch_list_grace_s: 0`), a create that the provider answers 503 after making
  the job, whose retry the job list does not show yet, makes a second job: it is cancelled, and
  what it answered before is counted (with the grace: tests/test_llm_batch_list_lag.py).
- An ingest run that ended without collecting (its process died; the provider was unavailable) is
  requested again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetKey, SensorResult, SkipReason

from haic_assets.definitions import build_definitions
from haic_assets.platform.partitions import source_shards
from haic_platform import llm_batches
from tests.helpers import REPO_ROOT, dagster_instance, run_partition
from tests.llm_servers import SMALL_CLIP, BatchPlan, FakeGeminiServer
from tests.test_captions_pipeline import GOOD_CAPTION
from tests.test_llm_batch_pipeline import (BATCH_PRICE, PARTITION, SECRET, batch_home, captions_meta, land_clips, poll,
                                           run_request)

pytestmark = pytest.mark.slow

# The submitting run, in a process of its own (the test kills it).
SUBMITTER = """
import os, sys
from pathlib import Path
from dagster import AssetKey
from haic_assets.definitions import build_definitions
from tests.helpers import dagster_instance, run_partition
with dagster_instance(Path(os.environ["HAIC_HOME"])) as instance:
    run_partition(build_definitions(), instance, sys.argv[1], selection=[AssetKey("captions")])
"""


def gemini_home(tmp_path, monkeypatch, server):
    home = batch_home(tmp_path, monkeypatch, "captions: {llm_mode: batch}\n")
    monkeypatch.setenv("GEMINI_API_KEY", SECRET)
    monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
    monkeypatch.setenv("HAIC_LLM_MAX_ATTEMPTS", "2")  # one retry, after a second
    return home


def history(defs):
    return defs.resources["storage"].tables().read("llm_batch_requests", f"captions__{PARTITION}")


def test_a_run_killed_between_submit_and_record_is_adopted_by_its_intent_and_the_job_paid_once(
        tmp_path, monkeypatch, video):
    with FakeGeminiServer(GOOD_CAPTION) as server:
        home = gemini_home(tmp_path, monkeypatch, server)
        defs = build_definitions()
        land_clips(defs, video(SMALL_CLIP), 20, flaky=0)
        with dagster_instance(home) as instance:
            instance.add_dynamic_partitions(source_shards.name, [PARTITION])
        server.script_batch_create("hold")  # the job is made; the answer never reaches the run
        log = tmp_path / "submitter.log"
        with log.open("wb") as out:
            submitter = subprocess.Popen([sys.executable, "-c", SUBMITTER, PARTITION], cwd=REPO_ROOT, stdout=out,
                                         stderr=subprocess.STDOUT, env=dict(os.environ))
        try:
            assert server.create_held.wait(900), log.read_text()[-3000:]
            os.kill(submitter.pid, signal.SIGKILL)
            assert submitter.wait(timeout=120) == -signal.SIGKILL
        finally:
            server.release_held.set()
            if submitter.poll() is None:
                submitter.kill()
        [job_id] = server.batch_jobs
        recorded = history(defs)
        assert recorded["state"].tolist() == ["intent"] * 20 and set(recorded["job_id"]) == {""}
        [intent] = set(recorded["intent"])
        assert server.batch_jobs[job_id]["display_name"].startswith(f"{intent} haic captions {PARTITION}")

        with dagster_instance(home) as instance:
            assert isinstance(poll(defs, instance), SkipReason)  # the intent may still be in flight: wait
            later = datetime.now(timezone.utc) + timedelta(minutes=16)  # past the sensor's wait and the list grace
            monkeypatch.setattr(llm_batches, "utc_now", lambda: later)
            tick = poll(defs, instance)
            [request] = tick.run_requests
            assert request.run_key == f"llm_batch:captions:{PARTITION}:{intent}"
            adopting = run_request(defs, instance, request)
            assert captions_meta(adopting)["batch_jobs_adopted"].value == 1
            assert captions_meta(adopting)["batch_jobs_submitted"].value == 0
            recorded = history(defs)
            assert recorded["state"].tolist() == ["submitted"] * 20 and set(recorded["job_id"]) == {job_id}
            assert recorded["round"].tolist() == [1] * 20

            tick = poll(defs, instance)
            ingest = run_request(defs, instance, tick.run_requests[0])
        captions = defs.resources["storage"].tables().read("captions", PARTITION)
        assert len(captions) == 20 and set(captions["batch_job"]) == {job_id}
        assert captions_meta(ingest)["cost_usd"].value == pytest.approx(20 * BATCH_PRICE)
        assert server.requests["batch.create"] == 1 and server.batch_items == 20  # one job, 20 billed items


def test_a_second_job_of_one_intent_is_cancelled_and_what_it_answered_is_counted(tmp_path, monkeypatch, video):
    with FakeGeminiServer(GOOD_CAPTION) as server:
        home = gemini_home(tmp_path, monkeypatch, server)
        # no list grace: the retry after the 503 sends again at once (tests/test_llm_batch_list_lag.py: the grace)
        (home / "settings.yaml").write_text("captions: {llm_mode: batch, batch_list_grace_s: 0}\n")
        server.list_lag = 1  # the retry after the 503 does not see the first job yet: it makes a second
        server.script_batch_create("503")
        server.script_batch(BatchPlan(polls_until_done=10, answered_before_expiry=5), BatchPlan())
        defs = build_definitions()
        land_clips(defs, video(SMALL_CLIP), 20, flaky=0)
        with dagster_instance(home) as instance:
            first = run_partition(defs, instance, PARTITION, selection=[AssetKey("captions")])
            assert first.success
            meta = captions_meta(first)
            assert (meta["batch_jobs_submitted"].value, meta["batch_jobs_duplicate"].value) == (1, 1)
            # the duplicate was cancelled after answering 5 items: collected at once, billed, counted
            assert meta["batch_duplicate_cost_usd"].value == pytest.approx(5 * BATCH_PRICE)
            assert meta["llm_usage"].value["cost_usd"] == pytest.approx(5 * BATCH_PRICE)
            recorded = history(defs)
            assert recorded.groupby("state").size().to_dict() == {"duplicate_collected": 20, "submitted": 20}
            assert recorded["cost_usd"].sum() == pytest.approx(5 * BATCH_PRICE)
            tick = poll(defs, instance)
            ingest = run_request(defs, instance, tick.run_requests[0])
        states = {job["state"] for job in server.batch_jobs.values()}
        assert states == {"cancelled", "succeeded"} and server.requests["batch.cancel"] == 1
        captions = defs.resources["storage"].tables().read("captions", PARTITION)
        assert len(captions) == 20
        # the provider billed 25 items (5 in the cancelled duplicate, 20 in the kept job) and 25 are counted
        assert captions_meta(ingest)["cost_usd"].value == pytest.approx(20 * BATCH_PRICE)
        assert server.batch_items == 40 and len(server.batch_jobs) == 2


def test_an_ingest_run_that_ended_without_collecting_is_requested_again(tmp_path, monkeypatch, video):
    with FakeGeminiServer(GOOD_CAPTION) as server:
        home = gemini_home(tmp_path, monkeypatch, server)
        defs = build_definitions()
        land_clips(defs, video(SMALL_CLIP), 20, flaky=0)
        with dagster_instance(home) as instance:
            assert run_partition(defs, instance, PARTITION, selection=[AssetKey("captions")]).success
            [job_id] = server.batch_jobs
            key = f"llm_batch:captions:{PARTITION}:{job_id}"
            tick = poll(defs, instance)
            [request] = tick.run_requests
            assert request.run_key == key
            # its run's process died (what run monitoring records as FAILURE)
            job = defs.resolve_job_def("curate_source")
            died = instance.create_run_for_job(job, run_config=request.run_config, tags=request.tags,
                                               asset_selection=frozenset(request.asset_selection))
            instance.report_run_failed(died)
            again = poll(defs, instance)
            assert isinstance(again, SensorResult) and again.run_requests[0].run_key == f"{key}:attempt2"
            # that run ends without collecting: the provider answers 503 to every read of the job
            server.batch_gets_unavailable = 2
            run_request(defs, instance, again.run_requests[0])
            assert set(history(defs)["state"]) == {"submitted"}
            third = poll(defs, instance)
            assert third.run_requests[0].run_key == f"{key}:attempt3"
            run_request(defs, instance, third.run_requests[0])
            assert isinstance(poll(defs, instance), SkipReason)
        assert len(defs.resources["storage"].tables().read("captions", PARTITION)) == 20
