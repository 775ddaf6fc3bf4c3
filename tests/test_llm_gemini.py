"""Gemini through the real google-genai SDK against a local server speaking Gemini's REST API."""

from __future__ import annotations

import base64
import logging
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest

from haic_resources.llm.concurrency import map_concurrent
from haic_resources.llm.gemini import GeminiClient
from haic_resources.llm.retry import RetryPolicy
from haic_resources.llm.types import GenerationSettings, LLMError, TokenPrices
from tests.llm_servers import (SMALL_CLIP, FakeGeminiServer, Fault, assert_secret_absent_after_batch, client_options,
                               prompt_text_of)
from tests.timing import limit

SECRET = "AIzaTEST-secret-key-9f8e7d6c5b4a"
CAPTION = "There is 1 subject in the video. The subject is a man with short hair, wearing a red shirt. He juggles."


def make_client(server: FakeGeminiServer, cache_dir, **kw) -> GeminiClient:
    return GeminiClient(base_url=server.base_url, model="gemini-2.5-pro", **client_options(SECRET, cache_dir, **kw))


def test_small_video_goes_inline_with_its_mime_type_and_usage_is_read(video, tmp_path) -> None:
    clip = video(SMALL_CLIP)
    with FakeGeminiServer(CAPTION, input_tokens=5000, output_tokens=120) as server:
        client = make_client(server, tmp_path, prices=TokenPrices(1.25, 5.0))
        result = client.caption_video(clip, "Describe the people.", settings=GenerationSettings(temperature=0.2),
                                      prompt_version="caption_recaption/1")  # fmt: skip
        body = server.bodies[0]
        headers = server.headers_seen[0]
    parts = body["contents"][0]["parts"]
    inline = parts[0].get("inlineData") or parts[0].get("inline_data")
    assert base64.urlsafe_b64decode(inline["data"]) == clip.read_bytes()  # the SDK sends URL-safe base64
    assert (inline.get("mimeType") or inline.get("mime_type")) == "video/mp4"
    assert parts[1]["text"] == "Describe the people."
    assert body["generationConfig"]["temperature"] == 0.2
    assert headers["x-goog-api-key"] == SECRET  # the key is sent, as a header, never in the URL
    assert result.text == CAPTION
    assert (result.input_tokens, result.output_tokens, result.attempts, result.cached) == (5000, 120, 1, False)
    assert result.cost_usd == pytest.approx(5000 * 1.25e-6 + 120 * 5e-6)
    assert '"usage_metadata"' in result.raw_response


def test_video_over_the_inline_limit_goes_through_the_files_api(video, tmp_path) -> None:
    clip = video(SMALL_CLIP)
    with FakeGeminiServer(CAPTION, polls_until_active=3) as server:
        client = make_client(server, tmp_path, inline_limit_bytes=1024, file_poll_interval_s=0.01)
        result = client.caption_video(clip, "Describe the people.")
        deleted = list(server.deleted)
        counts = dict(server.requests)
        part = server.bodies[0]["contents"][0]["parts"][0]
    assert result.text == CAPTION
    assert counts["files.upload.start"] == 1 and counts["files.get"] == 3  # polled until ACTIVE
    file_data = part.get("fileData") or part.get("file_data")
    uri = file_data.get("fileUri") or file_data.get("file_uri")
    assert len(deleted) == 1 and uri.endswith(deleted[0])  # referenced by URI, deleted afterwards


def test_batch_survives_429_500_503_timeouts_and_a_malformed_body(video, tmp_path, caplog, capfd) -> None:
    caplog.set_level(logging.DEBUG)
    clip = video(SMALL_CLIP)
    prompts = [f"Describe clip-{i} please." for i in range(8)]
    http_date = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=0), usegmt=True)
    with FakeGeminiServer(lambda body: f"caption for {prompt_text_of(body).split()[1]}") as server:
        client = make_client(server, tmp_path / "cache", timeout_s=limit(0.5), concurrency=4)
        server.script_for("clip-1", Fault.status_code(429, retry_after="0"), Fault.status_code(429, retry_after=http_date))
        server.script_for("clip-2", Fault.status_code(500))
        server.script_for("clip-3", Fault.status_code(503), Fault.timeout(limit(1.0)))
        server.script_for("clip-4", Fault.timeout(limit(1.0)))
        server.script_for("clip-6", Fault.malformed())
        outcomes = map_concurrent(lambda p: client.caption_video(clip, p), prompts, limit=4)
        first_run_requests = server.total_requests

        errors = {o.item: o.error for o in outcomes if not o.ok}
        assert list(errors) == [prompts[6]]
        assert errors[prompts[6]].kind == "malformed_response"
        assert "unreadable response" in errors[prompts[6]].reason
        results = {o.item: o.value for o in outcomes if o.ok}
        assert results[prompts[1]].text == "caption for clip-1"
        assert [results[prompts[i]].retries for i in (0, 1, 2, 3, 4)] == [0, 2, 1, 2, 1]
        assert client.usage.retries == 6
        assert first_run_requests == 8 + 6  # one per item, plus one per retry

        # A second run over the answered items sends nothing: the server's own count proves it.
        rerun = make_client(server, tmp_path / "cache", timeout_s=limit(0.5))
        again = map_concurrent(lambda p: rerun.caption_video(clip, p), list(results), limit=4)
        assert server.total_requests == first_run_requests
        assert all(o.value.cached and o.value.attempts == 0 for o in again)
        assert [o.value.text for o in again] == [r.text for r in results.values()]

    assert_secret_absent_after_batch(SECRET, outcomes, caplog=caplog, capfd=capfd, cache_dir=tmp_path / "cache")


def test_an_error_echoing_the_key_is_redacted(tmp_path) -> None:
    with FakeGeminiServer("unused") as server:
        client = make_client(server, tmp_path)
        server.script(Fault.status_code(400))
        server._error = lambda code: {"error": {"code": code, "message": f"bad key {SECRET}", "status": "INVALID_ARGUMENT"}}  # type: ignore[method-assign]
        with pytest.raises(LLMError) as caught:
            client.complete_json("anything")
    assert caught.value.kind == "client_error" and caught.value.attempts == 1
    assert SECRET not in str(caught.value) and "***" in str(caught.value)


def test_complete_json_asks_for_json_and_rejects_prose(tmp_path) -> None:
    with FakeGeminiServer('```json\n{"score": 8, "reasons": ["detailed"]}\n```') as server:
        client = make_client(server, tmp_path)
        result = client.complete_json("Judge this caption.")
        assert server.bodies[0]["generationConfig"]["responseMimeType"] == "application/json"
        server.reply = "Sure! The score is 8."
        with pytest.raises(LLMError) as caught:
            client.complete_json("Judge another caption.")
    assert result.text == '{"score": 8, "reasons": ["detailed"]}'
    assert caught.value.kind == "invalid_json"
    assert not any(p.name.startswith(".tmp") for p in tmp_path.rglob("*"))
    assert len([p for p in tmp_path.rglob("*.json")]) == 1  # only the valid answer was cached


def test_retries_give_up_after_max_attempts(tmp_path) -> None:
    with FakeGeminiServer("unused") as server:
        client = make_client(server, tmp_path, retry=RetryPolicy(3, 0.0, 0.0))
        server.script(*[Fault.status_code(503)] * 5)
        with pytest.raises(LLMError) as caught:
            client.complete_json("x")
        assert server.total_requests == 3
    assert (caught.value.kind, caught.value.attempts, caught.value.status_code) == ("server_error", 3, 503)
    assert client.usage.errors == 1 and client.usage.retries == 2
