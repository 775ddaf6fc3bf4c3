"""OpenAI-compatible servers (vLLM, SGLang, Ollama) through the real openai SDK against a
local server speaking Chat Completions."""

from __future__ import annotations

import base64
import logging

import cv2
import numpy as np
import pytest

from haic_resources.llm.concurrency import map_concurrent
from haic_resources.llm.openai_compatible import OpenAIClient, sample_frames_jpeg
from haic_resources.llm.types import LLMError, TokenPrices
from tests.llm_servers import (SMALL_CLIP, FakeOpenAIServer, Fault, assert_secret_absent_after_batch, client_options,
                               prompt_text_of)
from tests.timing import limit

SECRET = "sk-test-SECRET-0123456789abcdef"
CAPTION = "There is 1 subject in the video. The subject is a woman with long hair, wearing a coat. She waves."


def make_client(server: FakeOpenAIServer, cache_dir, **kw) -> OpenAIClient:
    return OpenAIClient(base_url=f"{server.base_url}/v1", model="Qwen2-VL-7B-Instruct",
                        **client_options(SECRET, cache_dir, **kw))


def test_frames_are_sampled_uniformly_as_jpegs(video) -> None:
    frames = sample_frames_jpeg(video(SMALL_CLIP), 6, long_side=256)
    assert len(frames) == 6
    decoded = [cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR) for f in frames]
    assert all(max(img.shape[:2]) <= 256 for img in decoded)
    assert len({f for f in frames}) > 1  # spread over the clip, not one frame repeated


def test_video_is_sent_as_frames_plus_optional_video_url(video, tmp_path) -> None:
    clip = video(SMALL_CLIP)
    with FakeOpenAIServer(CAPTION, input_tokens=2000, output_tokens=100) as server:
        client = make_client(server, tmp_path, frames_per_video=4, send_video_url=True,
                             prices=TokenPrices(0.5, 1.5))  # fmt: skip
        result = client.caption_video(clip, "Describe the people.")
        body, headers = server.bodies[0], server.headers_seen[0]
    content = body["messages"][0]["content"]
    kinds = [part["type"] for part in content]
    assert kinds == ["video_url", "image_url", "image_url", "image_url", "image_url", "text"]
    video_url = content[0]["video_url"]["url"]
    assert video_url.startswith("data:video/mp4;base64,")
    assert base64.b64decode(video_url.split(",", 1)[1]) == clip.read_bytes()
    assert all(p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in content[1:5])
    assert content[-1]["text"] == "Describe the people."
    assert body["model"] == "Qwen2-VL-7B-Instruct" and body["temperature"] == 0.0
    assert headers["authorization"] == f"Bearer {SECRET}"
    assert (result.text, result.input_tokens, result.output_tokens) == (CAPTION, 2000, 100)
    assert result.cost_usd == pytest.approx(2000 * 0.5e-6 + 100 * 1.5e-6)


def test_frame_count_is_part_of_the_cache_key(video, tmp_path) -> None:
    clip = video(SMALL_CLIP)
    with FakeOpenAIServer(CAPTION) as server:
        make_client(server, tmp_path, frames_per_video=4).caption_video(clip, "p")
        make_client(server, tmp_path, frames_per_video=8).caption_video(clip, "p")
        make_client(server, tmp_path, frames_per_video=8).caption_video(clip, "p")
        assert server.total_requests == 2


def test_batch_survives_429_500_503_timeouts_and_a_malformed_body(tmp_path, caplog, capfd) -> None:
    caplog.set_level(logging.DEBUG)
    prompts = [f'Return JSON for item-{i}.' for i in range(10)]
    with FakeOpenAIServer(lambda body: '{"item": "%s"}' % prompt_text_of(body).split()[-1].rstrip(".")) as server:
        client = make_client(server, tmp_path / "cache", timeout_s=limit(0.5), concurrency=4)
        server.script_for("item-0", Fault.status_code(429, retry_after="0"))
        server.script_for("item-2", Fault.status_code(500), Fault.status_code(503))
        server.script_for("item-5", Fault.timeout(limit(1.0)))
        server.script_for("item-7", Fault.malformed())
        server.script_for("item-9", Fault.status_code(429, retry_after="0"), Fault.timeout(limit(1.0)))
        outcomes = map_concurrent(lambda p: client.complete_json(p), prompts, limit=4)
        first_run_requests = server.total_requests
        assert server.max_in_flight <= 4

        errors = {o.item: o.error for o in outcomes if not o.ok}
        assert list(errors) == [prompts[7]] and errors[prompts[7]].kind == "malformed_response"
        results = {o.item: o.value for o in outcomes if o.ok}
        assert results[prompts[2]].text == '{"item": "item-2"}'
        assert [results[prompts[i]].retries for i in (0, 1, 2, 5, 9)] == [1, 0, 2, 1, 2]
        assert client.usage.retries == 6 and first_run_requests == 10 + 6

        rerun = make_client(server, tmp_path / "cache", timeout_s=limit(0.5))
        again = map_concurrent(lambda p: rerun.complete_json(p), list(results), limit=4)
        assert server.total_requests == first_run_requests  # zero requests on the second run
        assert all(o.value.cached for o in again) and rerun.usage.requests_sent == 0

    assert_secret_absent_after_batch(SECRET, outcomes, caplog=caplog, capfd=capfd, cache_dir=tmp_path / "cache")


def test_json_mode_is_requested_unless_the_server_lacks_it(tmp_path) -> None:
    with FakeOpenAIServer('{"ok": true}') as server:
        make_client(server, tmp_path / "a").complete_json("x")
        make_client(server, tmp_path / "b", json_mode=False).complete_json("x")
        assert server.bodies[0]["response_format"] == {"type": "json_object"}
        assert "response_format" not in server.bodies[1]


def test_unreadable_video_is_an_item_error_not_a_crash(tmp_path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    with FakeOpenAIServer(CAPTION) as server:
        with pytest.raises(LLMError) as caught:
            make_client(server, tmp_path / "cache").caption_video(broken, "p")
        assert server.total_requests == 0
    assert caught.value.kind == "bad_input" and "broken.mp4" in caught.value.reason
