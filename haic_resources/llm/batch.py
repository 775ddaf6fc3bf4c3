"""Batch jobs: many calls sent as one job at the provider's batch price, answered hours later.

Gemini's batch mode (`client.batches`: inline requests, or over 20 MB one JSONL file) and OpenAI's
Batch API (a JSONL file through `files`, then `batches`) take the same requests as online calls, built by the same code
(`LLMClient._batch_submit` in each provider module), each keyed by its cache key. `BatchJobs`
submits, polls, collects and cancels; collecting puts every answer into the ONE response cache
under its call's key, so an item answered in a batch is never asked again online, and counts
its tokens at the batch price (`LLMClient.batch_discount`).

Nothing here waits for a job: a caller submits, records the job id, and asks again later (the
`llm_batch_sensor` polls; a run collects).

A job is never paid twice. Each job is submitted under an *intent*: a fresh id that is the first
word of the job's display name (OpenAI: metadata `name`), which the caller records before
anything is sent. A create request can succeed at the provider and still fail on our side (a 503
after the job was made, a timeout, the process killed before it wrote the job id down): before
any resubmission, and when a caller finds an intent it never saw answered, the provider's job
list is read (every page, back to the intent's record time) and a job carrying the intent is
adopted. The list is eventually consistent: a fresh job may be missing from it for a while, so a
caller that can look again later sends nothing again at once (`send_again=False`: the job is
unconfirmed), and one that sends again later does it under the same intent, so the first job,
when it shows up, is a second job of that intent: cancelled and kept in `duplicates`, so what it
billed is still collected and counted.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
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


# How far back the provider's job list is read for an intent: the intent's record time less this
# (clocks of our hosts and the provider's differ).
LIST_MARGIN = timedelta(minutes=30)


def new_intent_id() -> str:
    return f"haic-{uuid.uuid4().hex[:12]}"


def intent_of(job_name: str) -> str:
    """The intent id a job was submitted under (the first word of its name), or ''."""
    first = job_name.split(" ", 1)[0]
    return first if first.startswith("haic-") else ""


@dataclass(frozen=True)
class Intent:
    """One job to be: its id (recorded before sending), its display name, its calls."""

    id: str
    name: str
    calls: list[PreparedCall]


class BatchJobs:
    """The batch side of one `LLMClient`: its provider, model, prices, retries and cache.
    `recorded`: ids of jobs the caller has written down already (kept or duplicates): never taken
    again as a second job of their intent."""

    def __init__(self, client: LLMClient, recorded: Iterable[str] = ()) -> None:
        self.client = client
        self.recorded = set(recorded)
        self.duplicates: dict[str, Intent] = {}  # job id -> its intent: second jobs of one intent, cancelled
        # Intents created more than once while no list showed an earlier create's job: that job may show up yet.
        self.sent_again: set[str] = set()

    def plan(self, calls: Sequence[PreparedCall], display_name: str) -> list[Intent]:
        """The jobs `calls` make: one, or several when the requests are over the provider's size
        limit for one job; each with a fresh intent id."""
        unique = list({call.key: call for call in calls}.values())
        groups = chunk_by_size([self.client._batch_request_bytes(c) for c in unique], self.client.batch_max_bytes)
        intents = []
        for n, group in enumerate(groups):
            intent = new_intent_id()
            name = display_name if len(groups) == 1 else f"{display_name} ({n + 1}/{len(groups)})"
            intents.append(Intent(intent, f"{intent} {name}", [unique[i] for i in group]))
        return intents

    def submit(self, calls: Sequence[PreparedCall], display_name: str) -> dict[str, list[PreparedCall]]:
        """Jobs answering `calls` (job id -> its calls), for a caller that records nothing before
        sending (and so cannot look again later: a create not seen answered and not listed is sent
        again at once). Raises `LLMError` (jobs already created are returned on the error as `exc.submitted`)."""
        jobs: dict[str, list[PreparedCall]] = {}
        for intent in self.plan(calls, display_name):
            try:
                jobs[self.submit_intent(intent)] = intent.calls
            except LLMError as exc:
                exc.submitted = jobs  # type: ignore[attr-defined]
                raise
        return jobs

    def submit_intent(self, intent: Intent, recorded_at: datetime | None = None, *,
                      send_again: bool = True) -> str | None:
        """The job of `intent`: created, or, when a create we did not see answered made it, found in
        the provider's job list and adopted (every retry of the create looks first). When the list
        does not show it: the create is sent again if `send_again`, else None comes back (the job
        is unconfirmed: the caller keeps the intent and looks again later). `recorded_at`: when the
        intent was first recorded, for a caller that sends it again (an earlier create may have made
        a job no list showed yet). A second job of the intent found after the create is cancelled
        (`duplicates`)."""
        recorded = recorded_at or datetime.now(timezone.utc)
        since = recorded - LIST_MARGIN
        creates = 0

        def attempt() -> str | None:
            nonlocal creates
            if creates:  # the last create failed on our side: it may have made the job
                found = self._unrecorded(self.find(intent.id, since))
                if found or not send_again:
                    return found[0] if found else None
            creates += 1
            return self.client._batch_submit(intent.calls, intent.name)

        job_id, _ = self.client._retrying(attempt)
        if job_id is None:
            log.info("%s: batch intent %s: the create failed and the job list does not show a job of it; "
                     "not sent again now", self.client.provider, intent.id)
            return None
        if creates > 1 or recorded_at is not None:  # an earlier create may have made a job no list showed yet
            self.sent_again.add(intent.id)
            try:
                self.cancel_second_jobs(intent, job_id, recorded)
            except LLMError as exc:  # the job is made all the same; the caller looks for second jobs later
                log.warning("%s: batch intent %s: cannot read the job list for a second job: %s",
                            self.client.provider, intent.id, exc)
        log.info("%s %s: batch job %s (%s) holds %d requests", self.client.provider, self.client.model, job_id,
                 intent.id, len(intent.calls))
        return job_id

    def find(self, intent_id: str, since: datetime) -> list[str]:
        """Ids of the provider's jobs submitted under `intent_id` and created after `since`, oldest
        first (every page of the list is read back to `since`)."""
        listed, _ = self.client._retrying(lambda: self.client._batch_list(since))
        return [job_id for job_id, name, _state in reversed(listed) if intent_of(name) == intent_id]

    def adopt(self, intent: Intent, recorded_at: datetime) -> str | None:
        """The job a recorded intent made (extra ones cancelled into `duplicates`), or None: no list shows one."""
        found = self._unrecorded(self.find(intent.id, recorded_at - LIST_MARGIN))
        if not found:
            return None
        self._cancel_others(intent, found[0], found)
        return found[0]

    def cancel_second_jobs(self, intent: Intent, kept: str, recorded_at: datetime) -> None:
        """Every listed job of `intent` (recorded at `recorded_at`) but `kept` and those already
        recorded: cancelled, into `duplicates`."""
        self._cancel_others(intent, kept, self.find(intent.id, recorded_at - LIST_MARGIN))

    def _unrecorded(self, job_ids: list[str]) -> list[str]:
        return [job_id for job_id in job_ids if job_id not in self.recorded and job_id not in self.duplicates]

    def _cancel_others(self, intent: Intent, keep: str, found: list[str]) -> None:
        for job_id in self._unrecorded(found):
            if job_id != keep:
                log.warning("%s: batch job %s is a second job of %s; cancelling it (what it answered is still "
                            "collected and counted)", self.client.provider, job_id, intent.id)
                try:
                    self.cancel(job_id)
                except LLMError as exc:  # it may have ended meanwhile; it is collected and counted all the same
                    log.warning("%s: cannot cancel batch job %s: %s", self.client.provider, job_id, exc)
                self.duplicates[job_id] = intent

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
