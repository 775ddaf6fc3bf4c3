"""Batch jobs: many calls sent as one job at the provider's batch price, answered hours later.

Gemini's batch mode (`client.batches`: inline requests, or over 20 MB one JSONL file) and OpenAI's
Batch API (a JSONL file through `files`, then `batches`) take the same requests as online calls, built by the same code
(`LLMClient._batch_submit` in each provider module), each keyed by its cache key. `BatchJobs`
submits, polls, collects and cancels; collecting puts every answer into the ONE response cache
under its call's key, so an item answered in a batch is never asked again online, and counts
its tokens at the batch price (`LLMClient.batch_discount`).

Nothing here waits for a job: a caller submits, records the job id, and asks again later (the
`llm_batch_sensor` polls; a run collects).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from haic_core.llm_batches import chunk_by_size
from haic_resources.llm.client import LLMClient
from haic_resources.llm.types import LLMError, LLMResult, PreparedCall

log = logging.getLogger(__name__)

TERMINAL_STATES = frozenset({"succeeded", "failed", "expired", "cancelled"})


@dataclass(frozen=True)
class BatchStatus:
    job_id: str
    state: str  # pending | running | succeeded | failed | expired | cancelled
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES


class BatchJobs:
    """The batch side of one `LLMClient`: its provider, model, prices, retries and cache."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client

    def submit(self, calls: Sequence[PreparedCall], display_name: str) -> dict[str, list[PreparedCall]]:
        """Jobs answering `calls`: one, or several when the requests are over the provider's
        size limit for one job; job id -> its calls. Raises `LLMError` (jobs already created
        are returned on the error as `exc.submitted`)."""
        unique = list({call.key: call for call in calls}.values())
        groups = chunk_by_size([self.client._batch_request_bytes(c) for c in unique], self.client.batch_max_bytes)
        jobs: dict[str, list[PreparedCall]] = {}
        for n, group in enumerate(groups):
            part = [unique[i] for i in group]
            name = display_name if len(groups) == 1 else f"{display_name} ({n + 1}/{len(groups)})"
            try:
                job_id, _ = self.client._retrying(lambda: self.client._batch_submit(part, name))
            except LLMError as exc:
                exc.submitted = jobs  # type: ignore[attr-defined]
                raise
            jobs[job_id] = part
            log.info("%s %s: batch job %s submitted with %d requests", self.client.provider, self.client.model,
                     job_id, len(part))
        return jobs

    def status(self, job_id: str) -> BatchStatus:
        (state, detail), _ = self.client._retrying(lambda: self.client._batch_state(job_id))
        return BatchStatus(job_id, state, detail)

    def collect(self, job_id: str, calls: Sequence[PreparedCall]) -> dict[str, LLMResult | LLMError]:
        """Every call's fate in a finished job (cache key -> result or error). Answers are cached
        and priced as batch answers; an item the job did not answer is an error naming why."""
        status = self.status(job_id)
        if not status.done:
            raise LLMError("client_error", f"batch job {job_id} is still {status.state}")
        answers = {}
        if status.state != "failed":
            answers, _ = self.client._retrying(lambda: self.client._batch_results(job_id))
        outcome: dict[str, LLMResult | LLMError] = {}
        for call in calls:
            raw = answers.get(call.key)
            if raw is None:
                kind = "batch_failed" if status.state == "failed" else "batch_expired"
                outcome[call.key] = LLMError(kind, f"batch job {job_id} ended {status.state} without this item")
            elif isinstance(raw, LLMError):
                outcome[call.key] = raw
            else:
                try:
                    outcome[call.key] = self.client.accept(call, self.client._batch_reply(call, raw), batch=True)
                except LLMError as exc:
                    outcome[call.key] = exc
        with self.client._usage_lock:
            self.client.usage.calls += len(calls)
            self.client.usage.errors += sum(isinstance(o, LLMError) for o in outcome.values())
        return outcome

    def cancel(self, job_id: str) -> None:
        self.client._retrying(lambda: self.client._batch_cancel(job_id))
