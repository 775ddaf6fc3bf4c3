"""The plain data every LLM backend takes and returns: settings, results, errors, usage.

Frozen where they can be, so that settings hash into cache keys and results can be recorded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

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
    "too_large",  # the answer is over max_response_bytes / max_output_tokens, or was cut at them
    "batch_failed",  # a batch job answered this item with an error, or failed as a whole
    "batch_expired",  # a batch job ended (expired, cancelled) before answering this item
]
RETRYABLE_KINDS: frozenset[str] = frozenset({"rate_limited", "server_error", "timeout", "connection"})


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
class TokenPrices:
    """US dollars per million tokens. Zero means "not priced" (e.g. a self-hosted vLLM)."""

    input_per_million: float = 0.0
    output_per_million: float = 0.0

    def cost_usd(self, input_tokens: int, output_tokens: int) -> float:
        return (
            input_tokens * self.input_per_million + output_tokens * self.output_per_million
        ) / 1_000_000


@dataclass(frozen=True)
class PreparedCall:
    """One call, ready to be answered online or in a batch job: its cache key and its inputs.
    Built by `LLMClient.video_call` / `text_call`; both paths answer under the same key."""

    key: str
    operation: str  # caption_video | complete_json | complete_text
    prompt_text: str
    settings: GenerationSettings
    video_path: Path | None = None

    @property
    def json_output(self) -> bool:
        return self.operation == "complete_json"


@dataclass(frozen=True)
class ProviderReply:
    """What one successful request returned, before caching and accounting."""

    text: str
    raw_response: str
    model: str
    input_tokens: int
    output_tokens: int


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

    def replace_reason(self, reason: str) -> None:
        """A new `reason` (e.g. with a secret taken out), in the message too."""
        self.reason = reason
        self.args = (f"{self.kind}: {reason}",)


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
