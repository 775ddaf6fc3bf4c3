"""Caps on what one LLM answer may be: bytes on the wire and tokens in the answer.

A misbehaving server (or a model that never stops) once sent a 50 MB answer: the SDK read it
all into memory (1.78 GB), the cache stored it and the clip was recorded as captioned. Now:

- `capped_http_client(max_bytes, timeout_s)` is the httpx client both SDKs are given. Its
  transport refuses a response whose `Content-Length` is over the cap before reading the body,
  and stops reading a streamed (chunked) body at the cap, so memory stays bounded by the cap.
- Batch jobs are driven through a second client under `max_batch_result_bytes`: their results
  carry many answers in one body (a 2,000-caption job's file is megabytes).
- `check_reply_caps` refuses an answer that used more output tokens than `max_output_tokens`
  (a server that ignores the limit) or that the provider cut at that limit (a truncated answer
  is not an answer).

Both raise `LLMError('too_large')`: not retried, not cached; the stage records the item as an
`error` with the reason.
"""

from __future__ import annotations

from typing import Iterator

import httpx2 as httpx  # the HTTP library of both SDKs (openai, google-genai)

from haic_resources.llm.types import LLMError, ProviderReply

DEFAULT_MAX_RESPONSE_BYTES = 2 * 1024 * 1024
# A batch job's results (OpenAI's output file, Gemini's job with its inlined answers or its results
# file) hold every item's answer at once: they are read under this larger cap, and each answer in them
# is still held to max_response_bytes (`check_reply_caps`).
DEFAULT_MAX_BATCH_RESULT_BYTES = 512 * 1024 * 1024
# finish reasons meaning "stopped at max_output_tokens" (OpenAI / vLLM, Gemini)
TRUNCATED_FINISH_REASONS = frozenset({"length", "MAX_TOKENS"})


class ResponseTooLarge(LLMError):
    def __init__(self, reason: str) -> None:
        super().__init__("too_large", reason)


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, inner: httpx.SyncByteStream, max_bytes: int) -> None:
        self._inner = inner
        self._max_bytes = max_bytes

    def __iter__(self) -> Iterator[bytes]:
        seen = 0
        for chunk in self._inner:
            seen += len(chunk)
            if seen > self._max_bytes:
                self.close()
                raise ResponseTooLarge(f"response body over {self._max_bytes} bytes (max_response_bytes); "
                                       "stopped reading")
            yield chunk

    def close(self) -> None:
        self._inner.close()


class CappedTransport(httpx.BaseTransport):
    """An `httpx.HTTPTransport` whose responses may not exceed `max_bytes`."""

    def __init__(self, max_bytes: int, inner: httpx.BaseTransport | None = None) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes must be >= 1")
        self.max_bytes = max_bytes
        self._inner = inner or httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            response.close()
            raise ResponseTooLarge(f"response of {int(declared)} bytes is over max_response_bytes "
                                   f"{self.max_bytes}; not read")
        return httpx.Response(response.status_code, headers=response.headers,
                              stream=_CappedStream(response.stream, self.max_bytes),  # type: ignore[arg-type]
                              extensions=response.extensions, request=request)

    def close(self) -> None:
        self._inner.close()


def capped_http_client(max_bytes: int, timeout_s: float, **options) -> httpx.Client:
    return httpx.Client(transport=CappedTransport(max_bytes), timeout=timeout_s, **options)


def cap_error_in(exc: BaseException) -> LLMError | None:
    """The `ResponseTooLarge` an SDK wrapped (e.g. in its connection error), if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ResponseTooLarge):
            return LLMError("too_large", current.reason)
        current = current.__cause__ or current.__context__
    return None


def check_reply_caps(reply: ProviderReply, max_output_tokens: int | None, finish_reason: str | None,
                     max_bytes: int) -> ProviderReply:
    """`reply`, or `LLMError('too_large')` when it is over a cap or was cut at one."""
    if finish_reason in TRUNCATED_FINISH_REASONS:
        raise LLMError("too_large", f"answer cut at max_output_tokens {max_output_tokens} "
                                    f"(finish reason {finish_reason})")
    if max_output_tokens is not None and reply.output_tokens > max_output_tokens:
        raise LLMError("too_large", f"answer of {reply.output_tokens} output tokens is over max_output_tokens "
                                    f"{max_output_tokens}")
    size = len(reply.text.encode("utf-8"))
    if size > max_bytes:
        raise LLMError("too_large", f"answer of {size} bytes is over max_response_bytes {max_bytes}")
    return reply
