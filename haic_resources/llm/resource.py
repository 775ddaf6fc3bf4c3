"""The LLM backend as a Dagster resource: Gemini or any OpenAI-compatible server, or none.

Keys arrive only through environment variables (Dagster `EnvVar`); with no backend configured,
every LLM-backed asset fails fast with `NOT_CONFIGURED`, and shard runs and re-curation leave them out.
"""

from pathlib import Path

from dagster import ConfigurableResource, Failure
from pydantic import Field

from haic_resources.llm.client import LLMClient
from haic_resources.llm.response_cap import DEFAULT_MAX_BATCH_RESULT_BYTES, DEFAULT_MAX_RESPONSE_BYTES
from haic_resources.llm.retry import RetryPolicy
from haic_resources.llm.types import TokenPrices

NOT_CONFIGURED = (
    "No LLM backend is configured, so captions / caption judgement / QA generation cannot run. "
    "Configure one with environment variables, then reload the code location: "
    "Gemini: GEMINI_API_KEY=... (optional HAIC_LLM_MODEL, default gemini-2.5-pro; the paper's gemini-1.5-pro is "
    "retired by Google but still selectable); "
    "OpenAI or an OpenAI-compatible server (vLLM, SGLang, Ollama): OPENAI_API_KEY=... and optionally "
    "OPENAI_BASE_URL=http://host:8000/v1 and HAIC_LLM_MODEL=<served model>. "
    "HAIC_LLM_PROVIDER=gemini|openai chooses when both are set."
)

DEFAULT_MODELS = {"gemini": "gemini-2.5-pro", "openai": "gpt-4o"}


class LLMResource(ConfigurableResource):
    provider: str = Field(default="", description="gemini | openai | '' (not configured)")
    model: str = Field(default="", description="model name; default per provider")
    api_key: str | None = Field(default=None, description="from GEMINI_API_KEY / OPENAI_API_KEY via EnvVar")
    base_url: str | None = Field(default=None, description="OpenAI-compatible endpoint or a Gemini proxy")
    timeout_s: float = 120.0
    concurrency: int = Field(default=8, description="requests in flight at once (client side)")
    max_attempts: int = Field(default=6, description="attempts per call, first included (429/5xx/timeouts)")
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    input_price_per_million: float = Field(default=0.0, description="USD per million input tokens (for cost accounting)")
    output_price_per_million: float = Field(default=0.0, description="USD per million output tokens")
    cache_dir: str = Field(description="persistent response cache (HAIC_HOME/cache/llm)")
    openai_frames_per_video: int = Field(default=8, description="frames sent to OpenAI-compatible servers per clip "
                                                                             "(0: the video_url part only)")
    openai_send_video_url: bool = Field(default=False, description="also send the clip as a video_url part (vLLM)")
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES,
                                    description="the most bytes one answer may have; a bigger one is the item's error")
    max_batch_result_bytes: int = Field(default=DEFAULT_MAX_BATCH_RESULT_BYTES,
                                        description="the most bytes one batch job's results (all its answers) may have")
    batch_discount: float = Field(default=0.5, ge=0.0, le=1.0,
                                  description="price cut of batch jobs (Gemini batch mode, OpenAI Batch API: 0.5)")

    @property
    def configured(self) -> bool:
        if self.provider == "gemini":
            return bool(self.api_key)
        # A self-hosted OpenAI-compatible server (vLLM, Ollama) may need no key at all.
        return self.provider == "openai" and bool(self.api_key or self.base_url)

    @property
    def model_name(self) -> str:
        return self.model or DEFAULT_MODELS.get(self.provider, "")

    def client(self) -> LLMClient:
        if not self.configured:
            raise Failure(description=NOT_CONFIGURED)
        common = dict(api_key=self.api_key or "EMPTY", model=self.model_name, base_url=self.base_url, timeout_s=self.timeout_s,
                      cache_dir=str(Path(self.cache_dir)), concurrency=self.concurrency,
                      retry=RetryPolicy(self.max_attempts, self.base_delay_s, self.max_delay_s),
                      prices=TokenPrices(self.input_price_per_million, self.output_price_per_million),
                      max_response_bytes=self.max_response_bytes, max_batch_result_bytes=self.max_batch_result_bytes,
                      batch_discount=self.batch_discount)
        if self.provider == "gemini":
            from haic_resources.llm.gemini import GeminiClient

            return GeminiClient(**common)
        from haic_resources.llm.openai_compatible import OpenAIClient

        return OpenAIClient(**common, frames_per_video=self.openai_frames_per_video,
                            send_video_url=self.openai_send_video_url)
