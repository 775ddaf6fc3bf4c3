"""The one interface every LLM backend speaks: `LLMClient`, and what it does around each request.

`LLMClient` turns a prompt (and optionally a video) into an `LLMResult`. The provider modules
(`gemini`, `openai_compatible`) implement only "send one request, once"; everything that makes
calls safe to run over thousands of clips is done here, once, for both: retries
(`haic_resources.llm.retry`), a client-side limit on requests in flight (a semaphore around each
request; batches go through `haic_resources.llm.concurrency.map_concurrent`), the persistent
response cache (`haic_resources.llm.cache`), and token and cost accounting per call and per
client.

Secrets: the API key is held by the provider SDK client only. Every message this module
builds passes through `redact` so that the key never reaches an exception, a log line or
the cache, even if a server echoes it back.
"""

from __future__ import annotations

import logging
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from haic_core.json_text import json_text
from haic_resources.llm.cache import ResponseCache, cache_key
from haic_resources.llm.retry import RetryPolicy, call_with_retries
from haic_resources.llm.response_cap import DEFAULT_MAX_BATCH_RESULT_BYTES, DEFAULT_MAX_RESPONSE_BYTES
from haic_resources.llm.types import (GenerationSettings, LLMError, LLMResult, PreparedCall, ProviderReply, TokenPrices,
                                     UsageTotals)
from haic_resources.storage.files import sha256_bytes, sha256_file

log = logging.getLogger(__name__)
T = TypeVar("T")


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class LLMClient(ABC):
    """Caption a video or complete a JSON prompt, with retries, a cache and cost accounting.

    Subclasses implement `_send_video` and `_send_text` — one request, no retries — and raise
    `LLMError` for every failure. Constructor arguments are plain values so a Dagster
    `ConfigurableResource` can build a client from its fields.
    """

    provider: ClassVar[str] = "abstract"

    def __init__(
        self,
        *,
        model: str,
        cache_dir: str | os.PathLike[str] | None = None,
        concurrency: int = 8,
        retry: RetryPolicy | None = None,
        prices: TokenPrices | None = None,
        secrets: Sequence[str] = (),
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_batch_result_bytes: int = DEFAULT_MAX_BATCH_RESULT_BYTES,
        batch_discount: float = 0.5,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.model = model
        # The most bytes one answer may have on the wire (haic_resources/llm/response_cap.py).
        self.max_response_bytes = max_response_bytes
        # The most bytes one batch job's results may have (all its answers together).
        self.max_batch_result_bytes = max_batch_result_bytes
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self.prices = prices or TokenPrices()
        # The price cut of a batch job (Gemini batch mode and OpenAI's Batch API: 50 %).
        self.batch_discount = batch_discount
        self.cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self.usage = UsageTotals()
        self._secrets = tuple(s for s in secrets if s)
        self._slots = threading.BoundedSemaphore(concurrency)
        self._usage_lock = threading.Lock()

    # ---- what subclasses provide ------------------------------------------------------------

    @abstractmethod
    def _send_video(
        self, prepared: Any, prompt_text: str, settings: GenerationSettings
    ) -> ProviderReply:
        """One request about a video; `prepared` is what `_prepare_video` returned."""

    @abstractmethod
    def _send_text(
        self, prompt_text: str, settings: GenerationSettings, *, json_output: bool
    ) -> ProviderReply: ...

    def _request_shape(self, *, with_video: bool) -> dict[str, Any]:
        """Provider settings that change what the model sees (e.g. frames per clip)."""
        return {}

    def _prepare_video(self, video_path: Path) -> Any:
        """Work done once per call, before the retried request (read bytes, upload a file,
        sample frames). Raises `LLMError`; its own network steps retry themselves."""
        return video_path

    def _release_video(self, prepared: Any) -> None:
        """Undo `_prepare_video` (e.g. delete an uploaded file); must not raise."""

    # Batch jobs (haic_resources/llm/batch.py drives them): the same requests as online calls,
    # built by the same code, sent as one job. One attempt each; BatchJobs retries.

    # The most request bytes one batch job takes (a bigger partition becomes several jobs).
    batch_max_bytes: ClassVar[int] = 100 * 1024 * 1024

    def _batch_request_bytes(self, call: PreparedCall) -> int:
        """About how many bytes `call` adds to a batch job (its prompt, its video as base64)."""
        video = call.video_path.stat().st_size * 4 // 3 if call.video_path is not None else 0
        return len(call.prompt_text.encode("utf-8")) + video + 512

    def _batch_submit(self, calls: Sequence[PreparedCall], display_name: str) -> str:
        """Create a batch job answering `calls` (custom id = cache key); its job id."""
        raise LLMError("client_error", f"{self.provider}: batch jobs are not supported")

    def _batch_state(self, job_id: str) -> tuple[str, dict[str, Any]]:
        """(pending | running | succeeded | failed | expired | cancelled, provider details)."""
        raise LLMError("client_error", f"{self.provider}: batch jobs are not supported")

    def _batch_results(self, job_id: str) -> dict[str, Any]:
        """cache key -> the provider's raw answer for it, or an `LLMError` for a failed item."""
        raise LLMError("client_error", f"{self.provider}: batch jobs are not supported")

    def _batch_reply(self, call: PreparedCall, raw: Any) -> ProviderReply:
        """One raw batch answer read exactly as an online answer is (caps included)."""
        raise LLMError("client_error", f"{self.provider}: batch jobs are not supported")

    def _batch_cancel(self, job_id: str) -> None:
        raise LLMError("client_error", f"{self.provider}: batch jobs are not supported")

    def _batch_list(self, created_after: datetime) -> list[tuple[str, str, str]]:
        """(job id, name, state) of the provider's batch jobs created after `created_after` (newest
        first, as the providers list them; the name is the display name the job was submitted with)."""
        raise LLMError("client_error", f"{self.provider}: batch jobs are not supported")

    # ---- the interface ---------------------------------------------------------------------

    def caption_video(
        self,
        video_path: str | os.PathLike[str],
        prompt_text: str,
        *,
        settings: GenerationSettings | None = None,
        prompt_version: str = "",
    ) -> LLMResult:
        """The model's text for `prompt_text` about the video at `video_path`."""
        return self.answer(self.video_call(video_path, prompt_text, settings=settings, prompt_version=prompt_version))

    def complete_json(
        self,
        prompt_text: str,
        *,
        settings: GenerationSettings | None = None,
        prompt_version: str = "",
        as_written: bool = False,
    ) -> LLMResult:
        """The model's answer to a text prompt that asks for JSON; `text` is the JSON text.

        An answer that is not JSON raises `LLMError('invalid_json')` and is not cached.
        `as_written=True`: the answer's text as the model wrote it, unvalidated and without the
        provider's JSON mode (which would forbid the prompt's own shapes, such as a plain
        sentence), for a caller whose parser reads every shape.
        """
        return self.answer(self.text_call(prompt_text, settings=settings, prompt_version=prompt_version,
                                          as_written=as_written))

    # ---- calls: built once, answered online or in a batch job ----------------------------

    def video_call(self, video_path: str | os.PathLike[str], prompt_text: str, *,
                   settings: GenerationSettings | None = None, prompt_version: str = "") -> PreparedCall:
        """The call about a video, with its cache key (raises `LLMError('bad_input')` if unreadable)."""
        settings = settings or GenerationSettings()
        path = Path(video_path)
        try:
            video_sha = sha256_file(path)
        except OSError as exc:
            raise LLMError("bad_input", f"cannot read video {path.name}: {exc.strerror}") from None
        key = self._cache_key("caption_video", prompt_text, prompt_version, settings, video_sha256=video_sha)
        return PreparedCall(key, "caption_video", prompt_text, settings, path)

    def text_call(self, prompt_text: str, *, settings: GenerationSettings | None = None, prompt_version: str = "",
                  as_written: bool = False) -> PreparedCall:
        settings = settings or GenerationSettings()
        operation = "complete_text" if as_written else "complete_json"
        return PreparedCall(self._cache_key(operation, prompt_text, prompt_version, settings), operation,
                            prompt_text, settings)

    def answer(self, call: PreparedCall) -> LLMResult:
        """`call` answered now (online), or from the cache."""

        def send() -> tuple[ProviderReply, int]:
            if call.video_path is None:
                return self._retrying(lambda: self._send_text(call.prompt_text, call.settings,
                                                              json_output=call.json_output))
            prepared = self._prepare_video(call.video_path)
            try:
                return self._retrying(lambda: self._send_video(prepared, call.prompt_text, call.settings))
            finally:
                self._release_video(prepared)

        return self._cached_call(call, send)

    def cached(self, call: PreparedCall) -> LLMResult | None:
        """The cached answer to `call` (counted as a call and a cache hit), or None."""
        entry = self.cache.get(call.key) if self.cache is not None else None
        if entry is None:
            return None
        with self._usage_lock:
            self.usage.calls += 1
            self.usage.cache_hits += 1
        return LLMResult(text=entry["text"], raw_response=entry["raw_response"], provider=self.provider,
                         model=entry["model"], input_tokens=int(entry["input_tokens"]),
                         output_tokens=int(entry["output_tokens"]), cached=True, attempts=0, cost_usd=0.0,
                         cache_key=call.key)

    def accept(self, call: PreparedCall, reply: ProviderReply, *, attempts: int = 1, batch: bool = False) -> LLMResult:
        """A provider's answer to `call`: validated, counted (at the batch price when it came from a
        batch job), cached under the call's key. Raises `LLMError` for an answer that is unusable."""
        if call.json_output:
            try:
                read = json_text(reply.text)  # fences and prose skipped, syntax mended (raw_response keeps the original)
            except ValueError:
                raise LLMError("invalid_json",
                               f"model answer is not JSON (first 80 chars: {reply.text[:80]!r})") from None
            reply = ProviderReply(read, reply.raw_response, reply.model, reply.input_tokens, reply.output_tokens)
        cost = self.prices.cost_usd(reply.input_tokens, reply.output_tokens)
        if batch:
            cost *= 1.0 - self.batch_discount
        with self._usage_lock:
            self.usage.input_tokens += reply.input_tokens
            self.usage.output_tokens += reply.output_tokens
            self.usage.cost_usd += cost
        text = self._redact(reply.text)
        raw = self._redact(reply.raw_response)
        if self.cache is not None:
            self.cache.put(call.key, {"provider": self.provider, "model": reply.model, "text": text,
                                      "raw_response": raw, "input_tokens": reply.input_tokens,
                                      "output_tokens": reply.output_tokens, "via": "batch" if batch else "online",
                                      "created_at": datetime.now(timezone.utc).isoformat()})
        return LLMResult(text=text, raw_response=raw, provider=self.provider, model=reply.model,
                         input_tokens=reply.input_tokens, output_tokens=reply.output_tokens, cached=False,
                         attempts=attempts, cost_usd=cost, cache_key=call.key)

    # ---- shared machinery ------------------------------------------------------------------

    def _cache_key(self, operation: str, prompt_text: str, prompt_version: str, settings: GenerationSettings,
                   *, video_sha256: str | None = None) -> str:
        """Everything that determines the answer: who answers, to what prompt, about which video,
        with which settings, in which request shape (the same online and in a batch job)."""
        fields = {
            "provider": self.provider,
            "model": self.model,
            "operation": operation,
            "prompt_version": prompt_version,
            "prompt_sha256": sha256_bytes(prompt_text.encode("utf-8")),
            "settings": settings.as_dict(),
            "request_shape": self._request_shape(with_video=video_sha256 is not None),
        }
        if video_sha256 is not None:
            fields["video_sha256"] = video_sha256
        return cache_key(fields)

    def _retrying(self, attempt: Callable[[], T]) -> tuple[T, int]:
        """One logical request: retried, rate-limited by the semaphore, counted."""

        def one_attempt() -> T:
            with self._slots:
                with self._usage_lock:
                    self.usage.requests_sent += 1
                try:
                    return attempt()
                except LLMError as exc:
                    exc.replace_reason(self._redact(exc.reason))
                    raise

        def on_retry(n: int, exc: LLMError, delay: float) -> None:
            with self._usage_lock:
                self.usage.retries += 1
            log.info(
                "%s %s: attempt %d failed (%s), retrying in %.2fs",
                self.provider, self.model, n, exc.kind, delay,
            )

        return call_with_retries(one_attempt, self.retry, on_retry=on_retry)

    def _redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def _cached_call(self, call: PreparedCall, send: Callable[[], tuple[ProviderReply, int]]) -> LLMResult:
        hit = self.cached(call)
        if hit is not None:
            return hit
        with self._usage_lock:
            self.usage.calls += 1
        attempts = 0
        try:
            reply, attempts = send()
            return self.accept(call, reply, attempts=attempts)
        except LLMError as exc:
            exc.attempts = max(exc.attempts, attempts)
            exc.replace_reason(self._redact(exc.reason))
            with self._usage_lock:
                self.usage.errors += 1
            log.warning("%s %s: call failed after %d attempt(s): %s",
                        self.provider, self.model, exc.attempts, exc)
            raise

    def usage_snapshot(self) -> dict[str, Any]:
        with self._usage_lock:
            return self.usage.as_dict()


# Extensions Gemini and most video servers understand; mimetypes' answers (video/x-msvideo,
# video/quicktime) are not on Gemini's list of accepted video types.
VIDEO_MIME_TYPES: dict[str, str] = {
    ".mp4": "video/mp4",
    ".m4v": "video/mp4",
    ".mov": "video/mov",
    ".avi": "video/avi",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".mpeg": "video/mpeg",
    ".mpg": "video/mpg",
    ".flv": "video/x-flv",
    ".wmv": "video/wmv",
    ".3gp": "video/3gpp",
}


def video_mime_type(path: Path) -> str:
    return VIDEO_MIME_TYPES.get(path.suffix.lower(), "video/mp4")
