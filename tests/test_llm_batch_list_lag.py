"""A batch job that the provider's job list does not show yet is never paid twice unnoticed.

Both providers' batch lists are eventually consistent and paged: a job made a moment ago may be
missing from them. Driven as a deployment runs it: a settings file that says `llm_mode: batch`,
the real google-genai and openai clients against local servers speaking the batch endpoints
(whose list can lag a create until released, and cap a page's size), caption runs on a real
instance and the llm_batch_sensor's ticks. The clock is moved through `llm_batches.utc_now`.

- The create answers 503 after making the job and the list hides it: within the grace nothing is
  sent again (the items wait); once the list shows the job it is adopted. One job, paid once.
- The list still hides it when the grace has passed: the calls go out again under the same
  intent; when the first job shows up it is a second job of the intent, cancelled, and what it
  answered is collected and counted: the reported cost is the server's bill.
- The list is read page by page, back to the intent's record time and no further.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from dagster import AssetKey, SensorResult, SkipReason

from haic_assets.definitions import build_definitions
from haic_platform import llm_batches
from haic_resources.llm.batch import BatchJobs
from tests.helpers import dagster_instance, run_partition
from tests.llm_servers import SMALL_CLIP, BatchPlan, FakeGeminiServer, FakeOpenAIServer
from tests.test_captions_pipeline import GOOD_CAPTION
from tests.test_llm_batch import gemini, openai_client
from tests.test_llm_batch_pipeline import (BATCH_PRICE, PARTITION, SECRET, batch_home, captions_meta, land_clips, poll,
                                           run_request)

pytestmark = pytest.mark.slow

SERVERS = {"gemini": FakeGeminiServer, "openai": FakeOpenAIServer}


class Clock:
    """The batch bookkeeping's clock (runs and the sensor), frozen until a test moves it."""

    def __init__(self, monkeypatch) -> None:
        self.now = datetime.now(timezone.utc)
        monkeypatch.setattr(llm_batches, "utc_now", lambda: self.now)

    def advance(self, minutes: float) -> None:
        self.now += timedelta(minutes=minutes)


def provider_home(tmp_path, monkeypatch, provider: str, server):
    home = batch_home(tmp_path, monkeypatch, "captions: {llm_mode: batch}\n")  # the default grace, 15 minutes
    if provider == "gemini":
        monkeypatch.setenv("GEMINI_API_KEY", SECRET)
        monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
    else:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-batch")
        monkeypatch.setenv("OPENAI_BASE_URL", f"{server.base_url}/v1")
        monkeypatch.setenv("HAIC_LLM_MODEL", "gpt-4o")
    monkeypatch.setenv("HAIC_LLM_MAX_ATTEMPTS", "2")  # one retry of the create, after a second
    return home


def history(defs):
    return defs.resources["storage"].tables().read("llm_batch_requests", f"captions__{PARTITION}")


def run_captions(defs, instance):
    result = run_partition(defs, instance, PARTITION, selection=[AssetKey("captions")])
    assert result.success
    return result


def logged(instance, result, text: str) -> bool:
    return any(text in (entry.user_message or "") for entry in instance.all_logs(result.run_id))


def reported_cost(results) -> float:
    """What the runs reported spending (every answer and duplicate they collected, at the batch price)."""
    return sum(captions_meta(r)["llm_usage"].value["cost_usd"] for r in results)


def intent_of_job(server, job_id: str) -> str:
    job = server.batch_jobs[job_id]
    return (job.get("display_name") or job["metadata"]["name"]).split(" ", 1)[0]


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_a_job_the_list_shows_late_is_waited_for_then_adopted_and_paid_once(tmp_path, monkeypatch, video, provider):
    with SERVERS[provider](GOOD_CAPTION) as server:
        home = provider_home(tmp_path, monkeypatch, provider, server)
        clock = Clock(monkeypatch)
        recorded_at = clock.now
        server.script_batch_create("503")  # the provider makes the job, then answers 503
        server.list_lag = 2  # ... and its list shows the job from the third list request on
        defs = build_definitions()
        land_clips(defs, video(SMALL_CLIP), 20, flaky=0)
        with dagster_instance(home) as instance:
            first = run_captions(defs, instance)
            # the retry looked (list 1), did not find the job and sent nothing again: the items wait
            assert (captions_meta(first)["batch_jobs_submitted"].value, captions_meta(first)["batch_pending"].value) \
                == (0, 20)
            assert server.requests["batch.create"] == 1 and server.requests["batch.list"] == 1
            [job_id] = server.batch_jobs
            [intent] = set(history(defs)["intent"])
            assert history(defs)["state"].tolist() == ["intent"] * 20 and intent_of_job(server, job_id) == intent
            assert logged(instance, first, f"batch intent {intent} not listed yet; waiting until")

            clock.advance(minutes=5)
            assert isinstance(poll(defs, instance), SkipReason)  # within the grace the sensor asks for nothing
            rerun = run_captions(defs, instance)  # a re-run within the grace: list 2 still hides the job
            assert captions_meta(rerun)["batch_pending"].value == 20
            assert server.requests["batch.create"] == 1 and server.requests["batch.list"] == 2
            assert logged(instance, rerun, f"batch intent {intent} not listed yet; waiting until "
                                           f"{recorded_at + timedelta(minutes=15):%Y-%m-%d %H:%M:%S} UTC")

            clock.advance(minutes=11)  # past the grace: the sensor asks for a run that looks again
            [request] = poll(defs, instance).run_requests
            assert request.run_key == f"llm_batch:captions:{PARTITION}:{intent}"
            adopting = run_request(defs, instance, request)  # list 3 shows the job
            assert (captions_meta(adopting)["batch_jobs_adopted"].value,
                    captions_meta(adopting)["batch_jobs_submitted"].value) == (1, 0)
            assert set(history(defs)["state"]) == {"submitted"} and set(history(defs)["job_id"]) == {job_id}

            tick = poll(defs, instance)
            assert isinstance(tick, SensorResult)
            ingest = run_request(defs, instance, tick.run_requests[0])
            assert isinstance(poll(defs, instance), SkipReason)
        assert len(defs.resources["storage"].tables().read("captions", PARTITION)) == 20
        assert server.requests["batch.create"] == 1 and len(server.batch_jobs) == 1
        assert server.batch_items == 20 and server.billed_items == 20  # one job, 20 billed items
        results = [first, rerun, adopting, ingest]
        assert reported_cost(results) == pytest.approx(server.billed_items * BATCH_PRICE)
        assert reported_cost(results) == pytest.approx(20 * BATCH_PRICE)


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_a_job_the_list_shows_after_the_grace_is_found_as_a_second_job_of_its_intent_and_counted(
        tmp_path, monkeypatch, video, provider):
    with SERVERS[provider](GOOD_CAPTION) as server:
        home = provider_home(tmp_path, monkeypatch, provider, server)
        clock = Clock(monkeypatch)
        server.script_batch_create("503")
        server.hold_from_list(1)  # the first job is missing from the list until released
        # the first job would answer 5 items before a cancel; the one sent again ends on its second poll
        server.script_batch(BatchPlan(polls_until_done=10, answered_before_expiry=5), BatchPlan(polls_until_done=2))
        defs = build_definitions()
        land_clips(defs, video(SMALL_CLIP), 20, flaky=0)
        with dagster_instance(home) as instance:
            first = run_captions(defs, instance)
            assert captions_meta(first)["batch_pending"].value == 20 and server.requests["batch.create"] == 1
            [first_job] = server.batch_jobs
            [intent] = set(history(defs)["intent"])

            clock.advance(minutes=16)
            [request] = poll(defs, instance).run_requests
            resend = run_request(defs, instance, request)  # still not listed: sent again, under the same intent
            assert captions_meta(resend)["batch_jobs_submitted"].value == 1
            assert server.requests["batch.create"] == 2
            [second_job] = [job for job in server.batch_jobs if job != first_job]
            assert intent_of_job(server, second_job) == intent
            recorded = history(defs)
            assert recorded["state"].tolist() == ["submitted"] * 20 and set(recorded["job_id"]) == {second_job}
            assert set(recorded["intent"]) == {intent} and recorded["sent_again_at"].notna().all()
            assert logged(instance, resend, f"batch intent {intent}: no list showed its job by")

            server.release_listing()  # the first job shows up at last
            assert isinstance(poll(defs, instance), SkipReason)  # the job sent again is still running
            tick = poll(defs, instance)
            ingest = run_request(defs, instance, tick.run_requests[0])
            meta = captions_meta(ingest)
            # the ingest run looked for the first job again, found it, cancelled it and collected its 5 answers
            assert (meta["batch_jobs_duplicate"].value, meta["batch_jobs_collected"].value) == (1, 1)
            assert meta["batch_duplicate_cost_usd"].value == pytest.approx(5 * BATCH_PRICE)
            recorded = history(defs)
            assert recorded.groupby("state").size().to_dict() == {"answered": 20, "duplicate_collected": 20}
            assert set(recorded.loc[recorded["state"] == "duplicate_collected", "job_id"]) == {first_job}
            assert recorded["cost_usd"].sum() == pytest.approx(25 * BATCH_PRICE)
            assert isinstance(poll(defs, instance), SkipReason)  # nothing left open
        assert len(defs.resources["storage"].tables().read("captions", PARTITION)) == 20
        assert {job: server.batch_jobs[job]["state"] for job in server.batch_jobs} == {
            first_job: "cancelled", second_job: "succeeded"}
        assert server.requests["batch.cancel"] == 1 and server.batch_items == 40
        # the bill: 5 items the first job answered before the cancel, 20 of the second; all of it reported
        assert server.billed_items == 25
        assert reported_cost([first, resend, ingest]) == pytest.approx(server.billed_items * BATCH_PRICE)


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_the_job_list_is_read_page_by_page_back_to_the_intents_record_time(tmp_path, provider):
    """The server sends at most 2 jobs a page: the intent's job, made before two others, is on
    page 2 (newest first) and found there; a look that starts after every job reads one page."""
    server_type, make = (FakeGeminiServer, gemini) if provider == "gemini" else (FakeOpenAIServer, openai_client)
    with server_type("a caption") as server:
        server.list_page_max = 2
        jobs = BatchJobs(make(server, tmp_path / "cache"))
        calls = [jobs.client.text_call(f"caption {i}", as_written=True) for i in range(3)]
        [mine] = jobs.plan(calls[:1], "mine")
        recorded_at = datetime.now(timezone.utc)
        mine_job = jobs.submit_intent(mine)
        others = [job_id for n in (1, 2) for job_id in jobs.submit(calls[n:n + 1], f"other {n}")]
        assert server.requests["batch.list"] == 0
        assert jobs.find(mine.id, recorded_at - timedelta(minutes=30)) == [mine_job]
        assert server.requests["batch.list"] == 2  # page 1: the two others; page 2: the intent's job
        assert jobs.find(intent_of_job(server, others[1]), recorded_at - timedelta(minutes=30)) == [others[1]]
        assert server.requests["batch.list"] == 4  # every page back to the bound is read, wherever the match
        # a look back to after every job was made: the first page holds only older jobs, and ends it
        assert jobs.find(mine.id, datetime.now(timezone.utc) + timedelta(minutes=1)) == []
        assert server.requests["batch.list"] == 5
