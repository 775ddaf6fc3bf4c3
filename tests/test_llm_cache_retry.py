"""Shared LLM machinery: Retry-After, backoff with full jitter, retry counting, the
concurrency bound, the response cache and cost accounting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from haic_resources.llm.cache import ResponseCache, cache_key
from haic_core.json_text import json_text
from haic_resources.llm.concurrency import map_concurrent
from haic_resources.llm.retry import RetryPolicy, backoff_delay_s, call_with_retries, parse_retry_after
from haic_resources.llm.types import GenerationSettings, LLMError, TokenPrices
from haic_resources.llm.gemini import GeminiClient
from tests.helpers import REPO_ROOT
from tests.llm_servers import Fault, FakeGeminiServer

NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("0.5") == 0.5
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=30), usegmt=True), now=NOW) == 30.0
    assert parse_retry_after(format_datetime(NOW - timedelta(seconds=30), usegmt=True), now=NOW) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_full_jitter_capped_and_floored_by_retry_after() -> None:
    policy = RetryPolicy(max_attempts=10, base_delay_s=1.0, max_delay_s=8.0)
    assert backoff_delay_s(1, policy, rng=lambda: 1.0) == 1.0
    assert backoff_delay_s(3, policy, rng=lambda: 1.0) == 4.0
    assert backoff_delay_s(9, policy, rng=lambda: 1.0) == 8.0  # capped at max_delay
    assert backoff_delay_s(3, policy, rng=lambda: 0.0) == 0.0  # full jitter reaches zero
    assert backoff_delay_s(1, policy, retry_after_s=5.0, rng=lambda: 0.0) == 5.0
    assert backoff_delay_s(1, policy, retry_after_s=3600.0, rng=lambda: 0.0) == 8.0


def test_retries_are_counted_and_stop_at_max_attempts() -> None:
    failures = iter([LLMError("rate_limited", "429"), LLMError("server_error", "503")])

    def flaky() -> str:
        error = next(failures, None)
        if error:
            raise error
        return "done"

    sleeps: list[float] = []
    value, attempts = call_with_retries(flaky, RetryPolicy(5, 0.01, 0.01), sleep=sleeps.append)
    assert (value, attempts, len(sleeps)) == ("done", 3, 2)

    def always_503() -> str:
        raise LLMError("server_error", "HTTP 503")

    with pytest.raises(LLMError) as caught:
        call_with_retries(always_503, RetryPolicy(4, 0.0, 0.0), sleep=lambda s: None)
    assert caught.value.attempts == 4


def test_non_retryable_errors_are_not_retried() -> None:
    calls = []

    def bad_request() -> str:
        calls.append(1)
        raise LLMError("client_error", "HTTP 400")

    with pytest.raises(LLMError):
        call_with_retries(bad_request, RetryPolicy(5, 0.0, 0.0), sleep=lambda s: None)
    assert len(calls) == 1


def test_map_concurrent_keeps_order_bounds_threads_and_records_item_errors() -> None:
    running, peak, lock = [0], [0], threading.Lock()

    def work(n: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with lock:
            running[0] -= 1
        if n == 5:
            raise LLMError("malformed_response", "unreadable body")
        return n * n

    outcomes = map_concurrent(work, range(12), limit=3)
    assert [o.value for o in outcomes if o.ok] == [n * n for n in range(12) if n != 5]
    assert [o.item for o in outcomes if not o.ok] == [5]
    assert outcomes[5].error.reason == "unreadable body"
    assert peak[0] <= 3


def test_cache_key_changes_with_every_input() -> None:
    base = {"provider": "gemini", "model": "m", "prompt_version": "v1", "prompt_sha256": "a",
            "video_sha256": "b", "settings": GenerationSettings().as_dict()}  # fmt: skip
    keys = {cache_key(base)}
    for field, other in [("provider", "openai"), ("model", "m2"), ("prompt_version", "v2"),
                         ("prompt_sha256", "c"), ("video_sha256", "d"),
                         ("settings", GenerationSettings(temperature=0.7).as_dict())]:  # fmt: skip
        keys.add(cache_key({**base, field: other}))
    assert len(keys) == 7
    assert cache_key(dict(reversed(list(base.items())))) == cache_key(base)


def test_cache_round_trip_and_damaged_entry_is_a_miss(tmp_path) -> None:
    cache = ResponseCache(tmp_path)
    cache.put("ab" * 32, {"text": "hello"})
    assert cache.get("ab" * 32) == {"text": "hello"}
    assert cache.get("cd" * 32) is None
    (tmp_path / "ab" / f"{'ab' * 32}.json").write_text("{broken")
    assert cache.get("ab" * 32) is None


# A child process that stores answers in the cache, one after another, saying which it has stored.
CACHE_WRITER = """
import sys
from haic_resources.llm.cache import ResponseCache
cache = ResponseCache(sys.argv[1])
for i in range(100000):
    cache.put(f"{i:064x}", {"text": "answer " + str(i) * 500, "input_tokens": i})
    print(i, flush=True)
"""


def test_an_answer_stored_before_a_kill_9_is_read_by_another_process_and_not_paid_again(tmp_path) -> None:
    """The rule "never pay twice": every answer a writer stored survives its SIGKILL mid-stream
    (a write cut short is a miss, never a damaged hit), and a second process reads them all."""
    writer = subprocess.Popen([sys.executable, "-c", CACHE_WRITER, str(tmp_path / "llm")], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, text=True)
    stored = -1
    for line in writer.stdout:  # the writer says each answer it stored; it is killed while writing more
        stored = int(line)
        if stored == 300:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=60)
    writer.stdout.close()
    reader = subprocess.run([sys.executable, "-c", "import sys, json\n"
                             "from haic_resources.llm.cache import ResponseCache\n"
                             "cache = ResponseCache(sys.argv[1])\n"
                             "print(json.dumps([cache.get(f'{i:064x}') for i in range(int(sys.argv[2]) + 1)]))",
                             str(tmp_path / "llm"), str(stored)], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert reader.returncode == 0, reader.stderr
    answers = json.loads(reader.stdout)
    assert answers == [{"text": "answer " + str(i) * 500, "input_tokens": i} for i in range(stored + 1)]
    # At most the write the kill cut short is left, under its temporary name; its answer is a miss
    # (asked again) or whole, never half.
    assert len(list((tmp_path / "llm").rglob(".tmp-*"))) <= 1
    cut = stored + 1
    assert ResponseCache(tmp_path / "llm").get(f"{cut:064x}") in (None, {"text": "answer " + str(cut) * 500,
                                                                         "input_tokens": cut})


def test_json_answers_are_unfenced_mended_and_validated() -> None:
    assert json_text('```json\n{"a": 1}\n```') == '{"a": 1}'
    assert json_text(' [1, 2] ') == "[1, 2]"
    assert json_text('```json\n```json\n{"a": 1}\n```\n```') == '{"a": 1}'  # a fence in a fence
    assert json_text("Here it is:\n```\n{'a': 'x', 'b': [1, 2,],}\n```\nThanks.") == '{"a": "x", "b": [1, 2]}'
    assert json_text('""') == '""'
    for prose in ("not json", "B", "The caption does not mention it.", "", "```python\nx = 1\n```"):
        with pytest.raises(ValueError):
            json_text(prose)


def test_server_retry_after_is_honoured_end_to_end(tmp_path) -> None:
    with FakeGeminiServer('{"ok": true}') as server:
        client = GeminiClient(api_key="k-test", base_url=server.base_url, cache_dir=str(tmp_path),
                              retry=RetryPolicy(3, 0.001, 5.0))  # fmt: skip
        server.script(Fault.status_code(429, retry_after="1"))
        started = time.monotonic()
        result = client.complete_json("rate limited once")
        elapsed = time.monotonic() - started
    assert result.attempts == 2 and result.retries == 1
    assert elapsed >= 0.95, "waited less than the server's Retry-After"
    assert client.usage.retries == 1 and client.usage.requests_sent == 2


def test_cost_is_summed_per_call_and_cached_calls_cost_nothing(tmp_path) -> None:
    prices = TokenPrices(input_per_million=1.25, output_per_million=5.0)
    with FakeGeminiServer('{"ok": true}', input_tokens=1000, output_tokens=200) as server:
        client = GeminiClient(api_key="k-test", base_url=server.base_url, cache_dir=str(tmp_path), prices=prices)
        first = [client.complete_json(f"prompt {i}") for i in range(3)]
        again = client.complete_json("prompt 0")
    assert first[0].cost_usd == pytest.approx(1000 * 1.25e-6 + 200 * 5e-6)
    assert client.usage.cost_usd == pytest.approx(3 * first[0].cost_usd)
    assert (again.cached, again.cost_usd, again.attempts) == (True, 0.0, 0)
    assert client.usage_snapshot()["cache_hits"] == 1
    assert client.usage.input_tokens == 3000 and client.usage.output_tokens == 600
