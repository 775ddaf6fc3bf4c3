"""Retries: which failures are worth another attempt, how long to wait, and the loop that retries.

Exponential backoff with full jitter, honouring ``Retry-After`` (seconds or an HTTP date) on 429,
5xx, timeouts and dropped connections; every attempt is counted. The provider modules turn
their SDK's exceptions into typed `LLMError`s with `status_error` and `sdk_error`, so that both
providers classify failures the same way.

The loop is tenacity's. The SDKs' own retries stay off (`max_retries=0`, `HttpRetryOptions(attempts=1)`):
neither says how many attempts a failed call took (google-genai only logs them, openai tells only on
success), so retries could not be counted per partition; google-genai ignores Retry-After and openai
gives up on one over 2 minutes; the two back off differently (and from our policy); and a retry inside
the SDK holds our concurrency slot while it sleeps. bench/bench_libraries.py: the same attempts, sleeps
and counts as our old loop, at 15 µs a call instead of 0.2 µs, next to an LLM call of seconds.
"""

from __future__ import annotations

import email.utils
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TypeVar

import tenacity

from haic_resources.llm.types import ErrorKind, LLMError

T = TypeVar("T")


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

    def counted() -> T:
        nonlocal attempts
        attempts += 1
        try:
            return attempt()
        except LLMError as exc:
            exc.attempts = attempts
            raise

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception()
        return backoff_delay_s(state.attempt_number, policy, retry_after_s=exc.retry_after_s, rng=rng)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        if on_retry is not None:
            on_retry(state.attempt_number, state.outcome.exception(), state.upcoming_sleep)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception(lambda exc: isinstance(exc, LLMError) and exc.retryable),
        stop=tenacity.stop_after_attempt(policy.max_attempts), wait=wait, sleep=sleep,
        before_sleep=before_sleep, reraise=True)
    return retrying(counted), attempts


# --------------------------------------------------------------------------------------------
# Classifying failures


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


def status_error(during: str, status_code: int, message: str, retry_after_s: float | None) -> LLMError:
    """A provider's HTTP error answer to the request `during`; no status code at all counts as a
    server error. `message` is the provider's own (cut to 200 characters)."""
    return LLMError(
        error_kind_for_status(status_code) if status_code else "server_error",
        f"{during}: HTTP {status_code} {message[:200]}".strip(),
        retry_after_s=retry_after_s,
        status_code=status_code or None,
    )


def sdk_error(exc: Exception, during: str, unreadable: tuple[type[Exception], ...]) -> LLMError:
    """Any other failure of an SDK call: already an `LLMError`, a transport failure, or one of
    the `unreadable` exceptions (a 2xx body the SDK cannot parse: the server is broken for this
    request). Anything else is a bug of ours and is raised."""
    if isinstance(exc, LLMError):
        return exc
    kind = transport_error_kind(exc)
    if kind is not None:
        return LLMError(kind, f"{during}: {type(exc).__name__}")
    if isinstance(exc, unreadable):
        return LLMError("malformed_response", f"{during}: unreadable response ({type(exc).__name__})")
    raise exc
