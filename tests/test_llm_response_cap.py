"""An LLM answer has a ceiling: bytes on the wire (max_response_bytes) and tokens
(max_output_tokens). Beyond it the call is an error — not retried, not cached — and the stage
records the clip as an `error`, never as captioned. Real SDK clients against the local servers
of tests/llm_servers.py (and a chunked one here) on 127.0.0.1."""

from __future__ import annotations

import multiprocessing
import threading
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_resources.llm.gemini import GeminiClient
from haic_resources.llm.openai_compatible import OpenAIClient
from haic_resources.llm.response_cap import DEFAULT_MAX_RESPONSE_BYTES
from haic_resources.llm.types import GenerationSettings, LLMError
from tests.helpers import SAMPLE_PARTITION, dagster_instance, land_sample, ledger, run_partition, without_llm
from tests.llm_servers import FakeGeminiServer, FakeOpenAIServer, client_options
from tests.timing import limit

SECRET = "sk-test-cap-0123456789"
MB = 1024 * 1024


def openai_client(base_url: str, cache_dir, **kw) -> OpenAIClient:
    return OpenAIClient(base_url=f"{base_url}/v1", model="m", **client_options(SECRET, cache_dir, **kw))


def gemini_client(base_url: str, cache_dir, **kw) -> GeminiClient:
    return GeminiClient(base_url=base_url, model="gemini-test", **client_options(SECRET, cache_dir, **kw))


def cache_files(cache_dir) -> list:
    return [p for p in cache_dir.rglob("*") if p.is_file()]


def _serve_in_child(kind: str, reply_bytes: int, ready) -> None:
    server_class = FakeOpenAIServer if kind == "openai" else FakeGeminiServer
    with server_class("x" * reply_bytes) as server:
        ready.send(server.base_url)
        ready.recv()  # until the parent is done


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_a_50_mb_answer_is_refused_unread_and_not_cached(kind, tmp_path):
    # The server lives in another process, so the allocations measured here are the client's only.
    parent, child = multiprocessing.get_context("fork").Pipe()
    process = multiprocessing.get_context("fork").Process(target=_serve_in_child, args=(kind, 50 * MB, child))
    process.start()
    try:
        base_url = parent.recv()
        client = (openai_client if kind == "openai" else gemini_client)(base_url, tmp_path, max_response_bytes=MB)
        tracemalloc.start()
        with pytest.raises(LLMError) as raised:
            client.complete_json("describe the clip")
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    finally:
        parent.send("done")
        process.join(limit(10))
    assert raised.value.kind == "too_large" and not raised.value.retryable
    assert f"over max_response_bytes {MB}" in raised.value.reason
    assert raised.value.attempts == 1  # not retried
    assert peak < 8 * MB, f"the client allocated {peak / MB:.1f} MB for a refused answer"
    assert cache_files(tmp_path) == []
    assert client.usage_snapshot()["errors"] == 1


class _ChunkedHandler(BaseHTTPRequestHandler):
    """A 200 with no Content-Length: a chat completion streamed in 64 KiB chunks, 20 MiB long."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        head = b'{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,' \
               b'"message":{"role":"assistant","content":"'
        try:
            for chunk in [head] + [b"y" * 65536] * 320:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading at its cap


def test_a_streamed_answer_stops_being_read_at_the_cap(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ChunkedHandler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        client = openai_client(f"http://127.0.0.1:{server.server_address[1]}", tmp_path, max_response_bytes=MB)
        with pytest.raises(LLMError) as raised:
            client.complete_json("p")
    finally:
        server.shutdown()
        server.server_close()
    assert raised.value.kind == "too_large"
    assert "stopped reading" in raised.value.reason
    assert cache_files(tmp_path) == []


@pytest.mark.parametrize("kind", ["openai", "gemini"])
def test_an_answer_over_max_output_tokens_is_an_error(kind, tmp_path):
    server_class = FakeOpenAIServer if kind == "openai" else FakeGeminiServer
    with server_class('{"ok": true}', output_tokens=5000) as server:  # a server that ignores the limit
        client = (openai_client if kind == "openai" else gemini_client)(server.base_url, tmp_path)
        with pytest.raises(LLMError) as raised:
            client.complete_json("p", settings=GenerationSettings(max_output_tokens=512))
        assert server.total_requests == 1
        body = server.bodies[0]
    sent = body.get("max_tokens") or body["generationConfig"]["maxOutputTokens"]
    assert sent == 512  # the cap is asked for, and enforced when the server does not keep to it
    assert (raised.value.kind, raised.value.reason) == (
        "too_large", "answer of 5000 output tokens is over max_output_tokens 512")
    assert cache_files(tmp_path) == []


def test_an_answer_within_the_caps_is_answered_and_cached(tmp_path):
    with FakeOpenAIServer('{"ok": true}', output_tokens=100) as server:
        client = openai_client(server.base_url, tmp_path, max_response_bytes=MB)
        assert client.complete_json("p").text == '{"ok": true}'
    assert len(cache_files(tmp_path)) == 1


@pytest.mark.slow
def test_the_captions_stage_records_an_oversized_answer_as_the_clips_error(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("HAIC_HOME", str(home))
    without_llm(monkeypatch)
    land_sample(home)
    with dagster_instance(home) as instance:
        assert run_partition(build_definitions(), instance, SAMPLE_PARTITION).success
    with FakeGeminiServer("z" * (DEFAULT_MAX_RESPONSE_BYTES + MB)) as server:
        monkeypatch.setenv("GEMINI_API_KEY", SECRET)
        monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
        defs = build_definitions()
        with dagster_instance(home) as instance:
            result = run_partition(defs, instance, SAMPLE_PARTITION, selection=[AssetKey("captions")])
            assert result.success
            assert server.total_requests == 1  # too large is not retried
    book = ledger(home)
    captions = book[book["stage"] == "captions"]
    assert captions["verdict"].tolist() == ["error"]
    reason = captions["reason"].iloc[0]
    assert reason.startswith("too_large: response of ") and f"over max_response_bytes {DEFAULT_MAX_RESPONSE_BYTES}" in reason
    assert not list((home / "cache" / "llm").rglob("*.json"))
    assert len(defs.resources["storage"].tables().read("captions", SAMPLE_PARTITION)) == 0
