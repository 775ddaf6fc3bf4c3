"""Batch jobs through the real SDK clients against local servers that speak Gemini's batch mode
and OpenAI's Batch API: the same requests and cache keys as online calls, the batch price,
partial failures, expiry, cancellation; and the rounds an item may spend."""

from __future__ import annotations

import pytest

from haic_core.llm_batches import NextStep, chunk_by_size, next_step
from haic_resources.llm.batch import BatchJobs, intent_of
from haic_resources.llm.gemini import GeminiClient
from haic_resources.llm.openai_compatible import OpenAIClient
from haic_resources.llm.resource import LLMResource
from haic_resources.llm.types import LLMError, LLMResult, TokenPrices
from tests.llm_servers import SMALL_CLIP, BatchPlan, FakeGeminiServer, FakeOpenAIServer, client_options

PRICES = TokenPrices(1.25, 10.0)
ONLINE_PRICE = (1200 * 1.25 + 150 * 10.0) / 1e6


def gemini(server, cache_dir, **kw) -> GeminiClient:
    return GeminiClient(base_url=server.base_url, model="gemini-2.5-pro", prices=PRICES,
                        **client_options("AIza-batch-test", cache_dir, **kw))


def openai_client(server, cache_dir, **kw) -> OpenAIClient:
    return OpenAIClient(base_url=f"{server.base_url}/v1", model="gpt-4o", prices=PRICES, frames_per_video=2,
                        **client_options("sk-batch-test", cache_dir, **kw))


def test_an_item_answered_in_a_gemini_batch_is_never_asked_again_online(tmp_path, video):
    with FakeGeminiServer("a caption") as server:
        client = gemini(server, tmp_path / "cache")
        server.script_batch(BatchPlan(fail_markers=("take 3",), polls_until_done=3))
        calls = [client.video_call(video(SMALL_CLIP), f"describe take {i}") for i in range(5)]
        jobs = BatchJobs(client)
        [job_id] = jobs.submit(calls, "five takes")
        assert jobs.status(job_id).state == "running"
        with pytest.raises(LLMError, match="still running"):
            jobs.collect(job_id, calls)
        outcome = jobs.collect(job_id, calls)
        assert [type(outcome[c.key]).__name__ for c in calls] == ["LLMResult"] * 3 + ["LLMError"] + ["LLMResult"]
        assert outcome[calls[3].key].kind == "batch_failed"
        assert [outcome[c.key].cost_usd for c in calls if isinstance(outcome[c.key], LLMResult)] == \
            pytest.approx([ONLINE_PRICE / 2] * 4)
        # the online path asks the same cache under the same key: nothing is sent for answered items
        answered = client.caption_video(video(SMALL_CLIP), "describe take 0")
        assert answered.cached and answered.text == "a caption"
        assert server.requests["generateContent"] == 0
        client.caption_video(video(SMALL_CLIP), "describe take 3")  # the failed one is asked
        assert server.requests["generateContent"] == 1


def test_a_cancelled_gemini_job_leaves_every_item_expired(tmp_path, video):
    with FakeGeminiServer("a caption") as server:
        client = gemini(server, tmp_path / "cache")
        server.script_batch(BatchPlan(polls_until_done=10))
        calls = [client.text_call(f"question {i}", as_written=True) for i in range(3)]
        jobs = BatchJobs(client)
        [job_id] = jobs.submit(calls, "three")
        jobs.cancel(job_id)
        assert jobs.status(job_id).state == "cancelled"
        outcome = jobs.collect(job_id, calls)
        assert {o.kind for o in outcome.values()} == {"batch_expired"}
        assert server.requests["batch.cancel"] == 1


def test_openai_batch_lines_are_the_online_requests_and_expiry_keeps_what_was_answered(tmp_path, video):
    with FakeOpenAIServer('{"answer": 1}') as server:
        client = openai_client(server, tmp_path / "cache")
        online = client.complete_json("online question")
        server.script_batch(BatchPlan(end="expired", answered_before_expiry=2))
        calls = [client.text_call(f"question {i}") for i in range(4)] + [client.video_call(video(SMALL_CLIP), "clip")]
        jobs = BatchJobs(client)
        [job_id] = jobs.submit(calls, "five")
        job = server.batch_jobs[job_id]
        # one way to build a request: a batch line's body is what the online call sent
        online_body = server.bodies[0]
        first_line = job["requests"][0][1]
        assert {k: v for k, v in first_line.items() if k != "messages"} == \
            {k: v for k, v in online_body.items() if k != "messages"}
        assert [c for c, _ in job["requests"]] == [c.key for c in calls]
        assert len(job["requests"][4][1]["messages"][0]["content"]) == 3  # 2 frames + the prompt, as online
        outcome = jobs.collect(job_id, calls)
        kinds = [o.kind if isinstance(o, LLMError) else "ok" for o in (outcome[c.key] for c in calls)]
        assert kinds == ["ok", "ok", "batch_expired", "batch_expired", "batch_expired"]
        assert outcome[calls[0].key].text == '{"answer": 1}'
        assert online.cost_usd == pytest.approx(ONLINE_PRICE)
        assert outcome[calls[0].key].cost_usd == pytest.approx(ONLINE_PRICE / 2)


def test_a_failed_openai_job_fails_every_item_and_a_batch_discount_setting_prices_it(tmp_path):
    with FakeOpenAIServer("x") as server:
        client = openai_client(server, tmp_path / "cache", batch_discount=0.25)
        server.script_batch(BatchPlan(end="failed"), BatchPlan())
        calls = [client.text_call("q", as_written=True)]
        jobs = BatchJobs(client)
        [failed] = jobs.submit(calls, "fails")
        assert jobs.collect(failed, calls)[calls[0].key].kind == "batch_failed"
        [ok] = jobs.submit(calls, "works")
        assert jobs.collect(ok, calls)[calls[0].key].cost_usd == pytest.approx(ONLINE_PRICE * 0.75)


def test_a_partition_over_the_providers_size_limit_becomes_several_jobs(tmp_path, video):
    with FakeGeminiServer("c") as server:
        client = gemini(server, tmp_path / "cache")
        client.batch_max_bytes = 300_000  # a 97 KB clip is ~129 KB as base64: two per job
        calls = [client.video_call(video(SMALL_CLIP), f"take {i}") for i in range(5)]
        submitted = BatchJobs(client).submit(calls, "five")
        assert [len(part) for part in submitted.values()] == [2, 2, 1]
        assert server.batch_items == 5


def test_a_gemini_job_over_the_inline_limit_goes_as_a_jsonl_file_with_the_same_requests(tmp_path, video):
    with FakeGeminiServer("a caption") as server:
        inline = gemini(server, tmp_path / "inline-cache")
        client = gemini(server, tmp_path / "cache")
        client.batch_inline_max_bytes = 300_000  # five 97 KB clips are ~650 KB as base64: one file job
        calls = [client.video_call(video(SMALL_CLIP), f"describe take {i}") for i in range(5)]
        [inline_job] = BatchJobs(inline).submit(calls, "five takes")
        assert server.requests["batch.input_file"] == 0
        server.script_batch(BatchPlan(fail_markers=("take 3",)))
        jobs = BatchJobs(client)
        [job_id] = jobs.submit(calls, "five takes")
        assert server.requests["batch.input_file"] == 1 and server.batch_items == 10
        # one way to build a request: the file's lines are the inline requests, byte for byte
        assert server.batch_jobs[job_id]["requests"] == server.batch_jobs[inline_job]["requests"]
        outcome = jobs.collect(job_id, calls)
        assert server.requests["files.download"] == 1  # the results came as a file too
        assert [type(outcome[c.key]).__name__ for c in calls] == ["LLMResult"] * 3 + ["LLMError"] + ["LLMResult"]
        assert outcome[calls[3].key].kind == "batch_failed"
        assert outcome[calls[0].key].text == "a caption"
        assert outcome[calls[0].key].cost_usd == pytest.approx(ONLINE_PRICE / 2)
        assert client.caption_video(video(SMALL_CLIP), "describe take 0").cached
        assert server.requests["generateContent"] == 0


def test_rounds_an_item_may_spend():
    assert next_step([], max_rounds=2, fallback="batch").action == "batch"
    assert next_step([("submitted", "", "j1", "i1")], max_rounds=2, fallback="batch") == next_step(
        [("submitted", "", "j1", "i1")], max_rounds=1, fallback="online")
    assert next_step([("submitted", "", "j1", "i1")], max_rounds=2, fallback="batch").job_id == "j1"
    assert next_step([("failed", "boom", "j1", "")], max_rounds=2, fallback="online").action == "online"
    assert next_step([("expired", "late", "j1", "")], max_rounds=2, fallback="batch").action == "batch"
    gave_up = next_step([("failed", "a", "j1", ""), ("failed", "boom", "j2", "")], max_rounds=2, fallback="batch")
    assert (gave_up.action, gave_up.reason) == ("give_up", "boom (after 2 rounds)")
    assert next_step([("answered", "", "j1", "")], max_rounds=1, fallback="batch").action == "batch"  # cache was removed
    # an intent never written down as a job: look for it; a cancelled duplicate is not a round
    assert next_step([("intent", "", "", "haic-1")], max_rounds=1, fallback="batch") == NextStep("reconcile",
                                                                                                  intent="haic-1")
    assert next_step([("submitted", "", "j1", "i1"), ("duplicate_collected", "", "j2", "i1")], max_rounds=1,
                     fallback="batch") == NextStep("pending", job_id="j1")
    assert chunk_by_size([5, 5, 5, 20, 1], 10) == [[0, 1], [2], [3], [4]]


@pytest.mark.parametrize("provider", ["gemini", "openai"])
def test_a_job_made_before_a_503_is_found_by_its_intent_and_not_paid_twice(tmp_path, provider):
    """The provider makes the job, then answers 503: the retry reads the job list first and adopts
    that job. One job, 20 billed items for 20 calls (without the look: two jobs and 40)."""
    server_type, make = (FakeGeminiServer, gemini) if provider == "gemini" else (FakeOpenAIServer, openai_client)
    with server_type("a caption") as server:
        client = make(server, tmp_path / "cache")
        server.script_batch_create("503")
        calls = [client.text_call(f"caption {i}", as_written=True) for i in range(20)]
        jobs = BatchJobs(client)
        [(job_id, sent)] = jobs.submit(calls, "twenty").items()
        assert list(server.batch_jobs) == [job_id] and server.batch_items == 20
        # one list, before the retry: one create was sent, so no second job can exist to look for
        assert server.requests["batch.create"] == 1 and server.requests["batch.list"] == 1
        assert sent == calls and jobs.duplicates == {}
        assert intent_of(server.batch_jobs[job_id].get("display_name") or server.batch_jobs[job_id]["metadata"]["name"])
        outcome = jobs.collect(job_id, calls)
        assert sum(o.cost_usd for o in outcome.values()) == pytest.approx(20 * ONLINE_PRICE / 2)


def test_a_second_job_the_list_did_not_show_yet_is_cancelled_and_what_it_answered_is_counted(tmp_path):
    """The list lags one read behind: the retry after the 503 does not see the first job and makes a
    second; the look after it finds the first, cancels it, and keeps it as a duplicate whose five
    answers (given before the cancel) are collected and priced."""
    with FakeGeminiServer("a caption") as server:
        client = gemini(server, tmp_path / "cache")
        server.list_lag = 1
        server.script_batch_create("503")
        server.script_batch(BatchPlan(polls_until_done=10, answered_before_expiry=5), BatchPlan())
        calls = [client.text_call(f"caption {i}", as_written=True) for i in range(20)]
        jobs = BatchJobs(client)
        [kept] = jobs.submit(calls, "twenty")
        [first] = [job for job in server.batch_jobs if job != kept]
        assert list(jobs.duplicates) == [first] and jobs.duplicates[first].calls == calls
        assert server.batch_jobs[first]["state"] == "cancelled" and server.requests["batch.cancel"] == 1
        billed = [o for o in jobs.collect(first, calls).values() if isinstance(o, LLMResult)]
        assert len(billed) == 5 and sum(o.cost_usd for o in billed) == pytest.approx(5 * ONLINE_PRICE / 2)
        assert client.usage_snapshot()["cost_usd"] == pytest.approx(5 * ONLINE_PRICE / 2)


def test_the_default_gemini_model_is_current_and_the_papers_model_stays_reachable(tmp_path, monkeypatch):
    from haic_assets.platform.resources import llm_resource

    assert LLMResource(provider="gemini", api_key="k", cache_dir=str(tmp_path)).model_name == "gemini-2.5-pro"
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    monkeypatch.setenv("HAIC_LLM_MODEL", "gemini-1.5-pro")
    assert llm_resource().model_name == "gemini-1.5-pro"


@pytest.mark.parametrize("provider", ["gemini_inline", "gemini_file", "openai"])
def test_a_jobs_results_may_exceed_one_answers_cap_and_an_answer_over_it_is_that_items_error(tmp_path, provider):
    """Twelve 1.5 KB answers are an 18 KB+ results body under a 4 KB per-answer cap: every answer is
    read; the one 5 KB answer is its item's `too_large` error, never cached."""
    def reply(body):
        return "x" * (5000 if "question 7" in str(body) else 1500)

    server_type = FakeOpenAIServer if provider == "openai" else FakeGeminiServer
    with server_type(reply) as server:
        make = openai_client if provider == "openai" else gemini
        client = make(server, tmp_path / "cache", max_response_bytes=4096)
        if provider == "gemini_file":
            client.batch_inline_max_bytes = 1  # the job goes as a JSONL file, its results come as one
        server.script_batch(BatchPlan())
        calls = [client.text_call(f"question {i}", as_written=True) for i in range(12)]
        jobs = BatchJobs(client)
        [job_id] = jobs.submit(calls, "twelve")
        outcome = jobs.collect(job_id, calls)
        kinds = [o.kind if isinstance(o, LLMError) else len(o.text) for o in (outcome[c.key] for c in calls)]
        assert kinds == [1500] * 7 + ["too_large"] + [1500] * 4
        if provider == "gemini_file":
            assert server.requests["files.download"] == 1
        assert client.cached(calls[0]) is not None and client.cached(calls[7]) is None  # never cached
