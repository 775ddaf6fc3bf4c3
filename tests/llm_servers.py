"""Local test doubles of the remote LLM APIs, speaking their wire protocols on 127.0.0.1.

The real SDK clients (google-genai, openai) talk to these servers exactly as they would to the
providers, so the tests exercise our retry, cache, concurrency and parsing code against real
HTTP. The caption text a server returns is whatever the TEST tells it to return: this is a
test double of the remote API and must never be imported by production code.

Fault injection is scripted: `server.script(Fault.status(429, retry_after="0"), ...)` makes
the next generation requests fail in that order; `server.script_for("clip-3", Fault.malformed())`
applies only to requests whose body contains the marker, which keeps assertions deterministic
when a batch runs concurrently.

The servers live one module per wire protocol (tests/llm_server_gemini.py,
tests/llm_server_openai.py, over tests/llm_server_base.py); tests import them from here, with the
helpers below that the LLM tests share.
"""

from __future__ import annotations

from typing import Any

from haic_resources.llm.retry import RetryPolicy
from tests.llm_server_base import BatchPlan, Fault
from tests.llm_server_gemini import FakeGeminiServer
from tests.llm_server_openai import FakeOpenAIServer
from tests.timing import limit

__all__ = ["FAST_RETRY", "SMALL_CLIP", "BatchPlan", "FakeGeminiServer", "FakeOpenAIServer", "Fault",
           "assert_secret_absent_after_batch", "client_options", "prompt_text_of"]

# How the LLM tests build their clients: retries fast enough for a test, a clip small enough to
# send inline.
FAST_RETRY = RetryPolicy(max_attempts=5, base_delay_s=0.01, max_delay_s=0.05)
SMALL_CLIP = "imageio_realshort_cammotion_only.mp4"


def prompt_text_of(body: dict[str, Any]) -> str:
    """All text parts of a Gemini or OpenAI request body, joined (for echoing replies)."""
    texts: list[str] = []
    for content in body.get("contents", []):
        texts += [p["text"] for p in content.get("parts", []) if "text" in p]
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts += [p["text"] for p in content if p.get("type") == "text"]
    return "\n".join(texts)


def client_options(api_key: str, cache_dir: Any, **overrides: Any) -> dict[str, Any]:
    """The constructor arguments every LLM test client shares: the key, a short timeout (a request
    that outlives it is retried, and counted again by the server), fast retries, the cache at
    `cache_dir`; `overrides` win."""
    return {"api_key": api_key, "timeout_s": limit(2.0), "retry": FAST_RETRY, "cache_dir": str(cache_dir),
            **overrides}


def assert_secret_absent_after_batch(secret: str, outcomes: list, *, caplog: Any, capfd: Any, cache_dir: Any) -> None:
    """After a batch that retried: the API key is in no log line, no cache file, no error message
    and no raw response we produced."""
    from pathlib import Path

    captured = capfd.readouterr()
    assert "retrying" in caplog.text  # the scan below reads real log output
    assert secret not in caplog.text + captured.out + captured.err, "API key leaked into logs"
    texts = [str(o.error) for o in outcomes if not o.ok] + [o.value.raw_response for o in outcomes if o.ok]
    for text in texts:
        assert secret not in text, "API key leaked into a result or error message"
    files = [p for p in Path(cache_dir).rglob("*") if p.is_file()]
    assert files, "expected cache files to scan"
    for path in files:
        assert secret.encode() not in path.read_bytes(), f"API key leaked into cache file {path.name}"
