"""The one interface every LLM backend speaks, and the machinery they all share.

`LLMClient` turns a prompt (and optionally a video) into an `LLMResult`. The provider modules
(`llm_gemini`, `llm_openai`) implement only "send one request, once"; everything that makes
calls safe to run over thousands of clips lives here, once:

- retries with exponential backoff and full jitter, honouring ``Retry-After`` (seconds or an
  HTTP date) on 429, 5xx, timeouts and dropped connections; every attempt is counted;
- a client-side concurrency limit (a semaphore around each request) and `map_concurrent`,
  which runs a batch on threads and turns one item's failure into that item's error;
- a persistent response cache on disk, keyed by everything that determines the answer
  (provider, model, prompt-template version, sha256 of every input, generation settings, the
  shape of the request), so that a re-run sends no request for work already done;
- token and cost accounting per call and per client.

Secrets: the API key is held by the provider SDK client only. Every message this module
builds passes through `redact` so that the key never reaches an exception, a log line or
the cache, even if a server echoes it back.
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Generic, Literal, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")

ErrorKind = Literal[
    "rate_limited",  # 429
    "server_error",  # 5xx
    "timeout",  # client-side timeout
    "connection",  # connection refused / reset
    "malformed_response",  # the server answered 2xx with a body we cannot read
    "invalid_json",  # the model's text was meant to be JSON and is not
    "blocked",  # the provider returned no text (safety block, empty candidate)
    "client_error",  # 4xx other than 429: our request is wrong; retrying will not help
    "bad_input",  # the local input (video) cannot be read or sent
]
RETRYABLE_KINDS: frozenset[str] = frozenset({"rate_limited", "server_error", "timeout", "connection"})


# --------------------------------------------------------------------------------------------
# Settings and results: plain frozen data, so they can be hashed into cache keys and recorded.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings sent with a request. All of them are part of the cache key."""

    temperature: float = 0.0
    max_output_tokens: int = 2048
    top_p: float | None = None
    seed: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. `max_attempts` counts the first request too (1 = never retry)."""

    max_attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry delays must be >= 0")


@dataclass(frozen=True)
class TokenPrices:
    """US dollars per million tokens. Zero means "not priced" (e.g. a self-hosted vLLM)."""

    input_per_million: float = 0.0
    output_per_million: float = 0.0

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1_000_000


@dataclass(frozen=True)
class LLMResult:
    """One answered call. `cached` results cost nothing and made no request (`attempts` = 0)."""

    text: str
    raw_response: str  # the provider's response body as JSON text (our SDK's model dump)
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    cached: bool
    attempts: int
    cost_usd: float
    cache_key: str

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)


class LLMError(Exception):
    """A call that did not produce a usable answer. `reason` is specific and secret-free."""

    def __init__(
        self,
        kind: ErrorKind,
        reason: str,
        *,
        attempts: int = 1,
        retry_after_s: float | None = None,
        status_code: int | None = None,
    ) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind = kind
        self.reason = reason
        self.attempts = attempts
        self.retry_after_s = retry_after_s
        self.status_code = status_code

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS


@dataclass
class UsageTotals:
    """Running totals of one client: what was asked, what was sent, what it cost."""

    calls: int = 0
    cache_hits: int = 0
    requests_sent: int = 0
    retries: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Retry: pure pieces (delay computation, Retry-After parsing) plus one small driver.
# --------------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; else None."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def backoff_delay_s(
    retry_number: int,
    policy: RetryPolicy,
    *,
    retry_after_s: float | None = None,
    rng: Callable[[], float] = random.random,
) -> float:
    """Delay before retry `retry_number` (1-based).

    Full jitter (uniform in [0, min(max, base·2^(n-1))]) spreads a burst of clients that failed
    together. A server's Retry-After is a floor: waiting less is pointless, it will refuse
    again. It is capped at `max_delay_s` so that one bad header cannot stall a batch for hours.
    """
    ceiling = min(policy.max_delay_s, policy.base_delay_s * (2 ** (retry_number - 1)))
    delay = rng() * ceiling
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, policy.max_delay_s))
    return delay


def call_with_retries(
    attempt: Callable[[], T],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: Callable[[], float] = random.random,
    on_retry: Callable[[int, LLMError, float], None] | None = None,
) -> tuple[T, int]:
    """Run `attempt` until it succeeds or fails for good; return (value, attempts made).

    `attempt` raises `LLMError`; retryable kinds are retried up to `policy.max_attempts`. The
    error that finally escapes carries the number of attempts made.
    """
    attempts = 0
    while True:
        attempts += 1
        try:
            return attempt(), attempts
        except LLMError as exc:
            exc.attempts = attempts
            if not exc.retryable or attempts >= policy.max_attempts:
                raise
            delay = backoff_delay_s(attempts, policy, retry_after_s=exc.retry_after_s, rng=rng)
            if on_retry is not None:
                on_retry(attempts, exc, delay)
            sleep(delay)


def error_kind_for_status(status_code: int) -> ErrorKind:
    if status_code == 429:
        return "rate_limited"
    if status_code in (408,):
        return "timeout"
    if status_code >= 500:
        return "server_error"
    return "client_error"


def transport_error_kind(exc: BaseException) -> ErrorKind | None:
    """'timeout' / 'connection' for an HTTP transport exception (httpx or httpx2), else None.

    Both SDKs wrap transport errors in their own classes but keep the original as the cause,
    so we walk the chain and look at class names rather than import every transport.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        names = {cls.__name__ for cls in type(current).__mro__}
        if names & {"TimeoutException", "APITimeoutError", "TimeoutError", "ReadTimeout"}:
            return "timeout"
        if names & {
            "ConnectError",
            "RemoteProtocolError",
            "ReadError",
            "WriteError",
            "APIConnectionError",
            "ConnectionError",
        }:
            return "connection"
        current = current.__cause__ or current.__context__
    return None


# --------------------------------------------------------------------------------------------
# Concurrency
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome(Generic[T, R]):
    """One batch item's fate: a value or an `LLMError`, never both."""

    item: T
    value: R | None = None
    error: LLMError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def map_concurrent(
    fn: Callable[[T], R], items: Iterable[T], limit: int
) -> list[Outcome[T, R]]:
    """Apply `fn` to every item on at most `limit` threads; results in input order.

    An `LLMError` becomes that item's `Outcome.error`; any other exception is a bug and
    propagates (after the running items finish) rather than hiding inside a batch report.
    """
    if limit < 1:
        raise ValueError("limit must be >= 1")
    items = list(items)

    def run_one(item: T) -> Outcome[T, R]:
        try:
            return Outcome(item=item, value=fn(item))
        except LLMError as exc:
            return Outcome(item=item, error=exc)

    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(limit, len(items)), thread_name_prefix="llm") as pool:
        return list(pool.map(run_one, items))


# --------------------------------------------------------------------------------------------
# Cache
# --------------------------------------------------------------------------------------------


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def cache_key(fields: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines an answer."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return sha256_bytes(canonical.encode("utf-8"))


class ResponseCache:
    """One JSON file per answer under `root/<key[:2]>/<key>.json`.

    A directory of files (rather than one database file) lets many threads and processes
    write at once without a lock: each write goes to a temporary file and is renamed into
    place, which is atomic, so a reader sees a whole entry or none.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        path = self._path(key)
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            # A damaged entry is a miss, not a crash; the next answer overwrites it.
            log.warning("ignoring unreadable LLM cache entry %s", path.name)
            return None

    def put(self, key: str, entry: Mapping[str, Any]) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(entry, handle, ensure_ascii=False, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# --------------------------------------------------------------------------------------------
# The interface
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderReply:
    """What one successful request returned, before caching and accounting."""

    text: str
    raw_response: str
    model: str
    input_tokens: int
    output_tokens: int


_FENCED = re.compile(r"^\s*```(?:json|JSON)?\s*\n?(.*?)\n?\s*```\s*$", re.DOTALL)


def extract_json_text(text: str) -> str:
    """The JSON document inside a model's answer (bare, or in a ```json fence); validated.

    Raises ValueError when there is none.
    """
    stripped = text.strip()
    fenced = _FENCED.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    json.loads(stripped)  # raises ValueError (JSONDecodeError) when not JSON
    return stripped


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
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.model = model
        self.concurrency = concurrency
        self.retry = retry or RetryPolicy()
        self.prices = prices or TokenPrices()
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
        settings = settings or GenerationSettings()
        path = Path(video_path)
        try:
            video_sha = sha256_file(path)
        except OSError as exc:
            raise LLMError("bad_input", f"cannot read video {path.name}: {exc.strerror}") from None
        key = cache_key(
            {
                "provider": self.provider,
                "model": self.model,
                "operation": "caption_video",
                "prompt_version": prompt_version,
                "prompt_sha256": sha256_bytes(prompt_text.encode("utf-8")),
                "video_sha256": video_sha,
                "settings": settings.as_dict(),
                "request_shape": self._request_shape(with_video=True),
            }
        )

        def send() -> tuple[ProviderReply, int]:
            prepared = self._prepare_video(path)
            try:
                return self._retrying(lambda: self._send_video(prepared, prompt_text, settings))
            finally:
                self._release_video(prepared)

        return self._cached_call(key, send, validate=None)

    def complete_json(
        self,
        prompt_text: str,
        *,
        settings: GenerationSettings | None = None,
        prompt_version: str = "",
    ) -> LLMResult:
        """The model's answer to a text prompt that asks for JSON; `text` is the JSON text.

        An answer that is not JSON raises `LLMError('invalid_json')` and is not cached.
        """
        settings = settings or GenerationSettings()
        key = cache_key(
            {
                "provider": self.provider,
                "model": self.model,
                "operation": "complete_json",
                "prompt_version": prompt_version,
                "prompt_sha256": sha256_bytes(prompt_text.encode("utf-8")),
                "settings": settings.as_dict(),
                "request_shape": self._request_shape(with_video=False),
            }
        )

        def send() -> tuple[ProviderReply, int]:
            return self._retrying(lambda: self._send_text(prompt_text, settings, json_output=True))

        def validate(reply: ProviderReply) -> ProviderReply:
            try:
                json_text = extract_json_text(reply.text)
            except ValueError:
                raise LLMError(
                    "invalid_json",
                    f"model answer is not JSON (first 80 chars: {reply.text[:80]!r})",
                ) from None
            return ProviderReply(
                json_text, reply.raw_response, reply.model, reply.input_tokens, reply.output_tokens
            )

        return self._cached_call(key, send, validate=validate)

    # ---- shared machinery ------------------------------------------------------------------

    def _retrying(self, attempt: Callable[[], ProviderReply]) -> tuple[ProviderReply, int]:
        """One logical request: retried, rate-limited by the semaphore, counted."""

        def one_attempt() -> ProviderReply:
            with self._slots:
                with self._usage_lock:
                    self.usage.requests_sent += 1
                try:
                    return attempt()
                except LLMError as exc:
                    exc.reason = self._redact(exc.reason)
                    exc.args = (f"{exc.kind}: {exc.reason}",)
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

    def _cached_call(
        self,
        key: str,
        send: Callable[[], tuple[ProviderReply, int]],
        *,
        validate: Callable[[ProviderReply], ProviderReply] | None,
    ) -> LLMResult:
        with self._usage_lock:
            self.usage.calls += 1
        if self.cache is not None:
            entry = self.cache.get(key)
            if entry is not None:
                with self._usage_lock:
                    self.usage.cache_hits += 1
                return LLMResult(
                    text=entry["text"],
                    raw_response=entry["raw_response"],
                    provider=self.provider,
                    model=entry["model"],
                    input_tokens=int(entry["input_tokens"]),
                    output_tokens=int(entry["output_tokens"]),
                    cached=True,
                    attempts=0,
                    cost_usd=0.0,
                    cache_key=key,
                )
        attempts = 0
        try:
            reply, attempts = send()
            if validate is not None:
                reply = validate(reply)
        except LLMError as exc:
            exc.attempts = max(exc.attempts, attempts)
            exc.reason = self._redact(exc.reason)
            exc.args = (f"{exc.kind}: {exc.reason}",)
            with self._usage_lock:
                self.usage.errors += 1
            log.warning("%s %s: call failed after %d attempt(s): %s",
                        self.provider, self.model, exc.attempts, exc)
            raise
        cost = self.prices.cost_usd(reply.input_tokens, reply.output_tokens)
        with self._usage_lock:
            self.usage.input_tokens += reply.input_tokens
            self.usage.output_tokens += reply.output_tokens
            self.usage.cost_usd += cost
        text = self._redact(reply.text)
        raw = self._redact(reply.raw_response)
        if self.cache is not None:
            self.cache.put(
                key,
                {
                    "provider": self.provider,
                    "model": reply.model,
                    "text": text,
                    "raw_response": raw,
                    "input_tokens": reply.input_tokens,
                    "output_tokens": reply.output_tokens,
                    "created_at": datetime.now(timezone.utc).isoformat(),
                },
            )
        return LLMResult(
            text=text,
            raw_response=raw,
            provider=self.provider,
            model=reply.model,
            input_tokens=reply.input_tokens,
            output_tokens=reply.output_tokens,
            cached=False,
            attempts=attempts,
            cost_usd=cost,
            cache_key=key,
        )

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


__all__ = [
    "ErrorKind",
    "GenerationSettings",
    "LLMClient",
    "LLMError",
    "LLMResult",
    "Outcome",
    "ProviderReply",
    "ResponseCache",
    "RetryPolicy",
    "TokenPrices",
    "UsageTotals",
    "backoff_delay_s",
    "cache_key",
    "call_with_retries",
    "error_kind_for_status",
    "extract_json_text",
    "map_concurrent",
    "parse_retry_after",
    "redact",
    "sha256_file",
    "transport_error_kind",
    "video_mime_type",
]
