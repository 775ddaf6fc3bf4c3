"""An LLM stage's calls for one partition, answered online or through batch jobs (`llm_mode`).

Batch mode never waits for a job. A run answers what the cache already knows, collects every
finished job of the partition (answers go into the one response cache under the same keys as
online calls, priced at the batch rate), sends the calls that are left as new batch jobs, and
records every request with its job id in the table `llm_batch_requests` (one Parquet file per
step and partition, `<step>__<partition>`; a warehouse view). A step is the stage, or one round
of a stage that asks in dependent rounds (evaluation's caption protocol: `eval_answers`, then
`eval_judge`). Items still in a job are `pending`: the stage records a `pending` ledger row (code
`batch_pending`, the job id), which its verdict replaces when the job is ingested. The
`llm_batch_sensor` polls the open jobs and, when one ends, requests a run of the stage for the
partition, which ingests the results. A failed or expired item goes into a new batch job or is
asked online (`batch_fallback`) until `batch_max_rounds` rounds are spent.

No job is paid twice: each job's intent (an id that is the first word of its display name) is
recorded, state `intent`, before its create request is sent; a run that finds an intent it did
not see answered (its process was killed, the request failed after the provider made the job)
looks for the job in the provider's list and adopts it. The list is eventually consistent (a job
made a moment ago may be missing from it), so an intent no list shows waits, its items pending,
until `batch_list_grace_s` has passed since it was sent; then its calls go out again under the
same intent, and until the job that answers them is collected every run looks for the first
create's job too. A second job of one intent is cancelled; its rows (`duplicate`) are not a round
of the item, and what it answered before the cancel is collected, priced and counted
(`batch_duplicate_cost_usd`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Literal

import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.llm_batches import (ANSWERED, DUPLICATE, DUPLICATE_COLLECTED, DUPLICATE_STATES, EXPIRED, FAILED,
                                   INTENT, ONLINE_ANSWERED, ONLINE_FAILED, REQUEST_COLUMNS, SUBMITTED, TIME_COLUMNS,
                                   next_step)
from haic_resources.llm.batch import BatchJobs, Intent
from haic_resources.llm.client import LLMClient
from haic_resources.llm.concurrency import map_concurrent
from haic_resources.llm.types import LLMError, LLMResult, PreparedCall

BATCH_TABLE = "llm_batch_requests"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
LLMMode = Literal["online", "batch"]


class BatchSettings(Config):
    """Config fields of a stage that can call its LLM in batch mode (its Config subclasses this)."""

    llm_mode: LLMMode = Field(default="online", description="online: ask now; batch: batch jobs at the batch "
                                                            "price, ingested when the llm_batch_sensor sees them end")
    batch_fallback: Literal["batch", "online"] = Field(
        default="batch", description="where a failed or expired batch item goes next: a new batch job or online")
    batch_max_rounds: int = Field(default=2, ge=1, description="rounds per item (first batch + retries)")
    # 15 minutes: the providers' job lists lag a create by seconds, not minutes (neither promises a
    # bound), and the llm_batch_sensor looks at an intent 15 minutes after it was recorded anyway;
    # the wait delays a job of up to 24 hours by at most that much.
    batch_list_grace_s: int = Field(
        default=900, ge=0, description="how long a batch job whose create failed on our side may stay missing from "
                                       "the provider's job list before its calls are sent again (same intent)")


def utc_now() -> datetime:
    """The clock of the batch bookkeeping (tests move it)."""
    return datetime.now(timezone.utc)


@dataclass
class Answers:
    """Each item's fate: answered (`results`, LLMResult or LLMError) or still in a job (`pending`)."""

    results: dict[str, LLMResult | LLMError] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)  # item -> job id
    batch_job: dict[str, str] = field(default_factory=dict)  # item answered by a batch job -> its id
    jobs_submitted: list[str] = field(default_factory=list)
    jobs_collected: list[str] = field(default_factory=list)
    jobs_adopted: list[str] = field(default_factory=list)  # made by an earlier attempt, found by intent
    jobs_duplicate: list[str] = field(default_factory=list)  # second jobs of one intent, cancelled
    duplicate_cost_usd: float = 0.0  # what the duplicates answered before the cancel (billed)

    def summary(self) -> dict[str, Any]:
        return {"batch_pending": len(self.pending), "batch_answered": len(self.batch_job),
                "batch_jobs_submitted": len(self.jobs_submitted), "batch_jobs_collected": len(self.jobs_collected),
                "batch_jobs_adopted": len(self.jobs_adopted), "batch_jobs_duplicate": len(self.jobs_duplicate),
                "batch_duplicate_cost_usd": self.duplicate_cost_usd}


def answer_calls(stage, client: LLMClient, calls: dict[str, PreparedCall], config: Any, *,
                 step: str | None = None) -> Answers:
    """Every item's call (item id -> call) answered as `config.llm_mode` says. `step`: the name
    its requests are recorded under (default: the stage's); one per round of dependent calls."""
    if config.llm_mode == "online":
        # An item still in a batch job is not asked online too: its job's ingest run answers it.
        history = request_history(stage.storage.tables(), step or stage.stage, stage.partition_key)
        waiting = in_open_jobs(history, calls)
        asked = [item for item in calls if item not in waiting]
        outcomes = map_concurrent(lambda item: client.answer(calls[item]), asked, client.concurrency)
        return Answers(results={o.item: o.value if o.ok else o.error for o in outcomes}, pending=waiting)
    return _BatchRound(stage, client, calls, config, step or stage.stage).run()


def in_open_jobs(history: pd.DataFrame, calls: dict[str, PreparedCall]) -> dict[str, str]:
    """item -> the open batch job its call is in (the call's latest request is still submitted, or
    recorded as an intent whose job may exist: its id then)."""
    history = history[~history["state"].isin(DUPLICATE_STATES)]
    latest = history.sort_values("round").groupby("cache_key").tail(1)
    waiting = latest[latest["state"].isin([SUBMITTED, INTENT])]
    open_job = dict(zip(waiting["cache_key"], waiting["job_id"].where(waiting["state"] == SUBMITTED, waiting["intent"])))
    return {item: open_job[call.key] for item, call in calls.items() if call.key in open_job}


def history_key(stage: str, partition: str) -> str:
    """The table partition of one stage's requests for one of its partitions."""
    return f"{stage}__{partition}"


def request_history(tables, stage: str, partition: str) -> pd.DataFrame:
    frame = tables.read(BATCH_TABLE, history_key(stage, partition))
    if frame is None:
        return pd.DataFrame(columns=REQUEST_COLUMNS)
    # Files written before intents, duplicates and sending again were recorded lack those columns.
    frame = frame.reindex(columns=REQUEST_COLUMNS).fillna({"intent": "", "cost_usd": 0.0})
    for column in TIME_COLUMNS:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def _histories(tables, stage: str):
    prefix = history_key(stage, "")
    for key in tables.partitions(BATCH_TABLE):
        if key.startswith(prefix):
            yield key[len(prefix):], request_history(tables, stage, key[len(prefix):])


def open_jobs(tables, stage: str) -> dict[str, list[str]]:
    """partition -> ids of its batch jobs with requests not yet collected (duplicates included)."""
    found: dict[str, list[str]] = {}
    for partition, history in _histories(tables, stage):
        jobs = sorted(set(history.loc[history["state"].isin([SUBMITTED, DUPLICATE]), "job_id"]))
        if jobs:
            found[partition] = jobs
    return found


def unresolved_intents(tables, stage: str, now: datetime, min_age: timedelta) -> dict[str, list[str]]:
    """partition -> intents recorded over `min_age` before `now` whose job was never written down
    (the run that sent them died or failed, or the list did not show it) and that may be sent again
    by now: a run of the partition looks for their jobs."""
    found: dict[str, list[str]] = {}
    for partition, history in _histories(tables, stage):
        rows = history[history["state"] == INTENT]
        rows = rows[(rows["submitted_at"] < now - min_age) & ~(rows["send_again_after"] > now)]
        if len(rows):
            found[partition] = sorted(set(rows["intent"]))
    return found


class _BatchRound:
    def __init__(self, stage, client: LLMClient, calls: dict[str, PreparedCall], config: Any, step: str) -> None:
        self.stage, self.client, self.calls, self.config, self.step = stage, client, calls, config, step
        self.tables = stage.storage.tables()
        self.rows = request_history(self.tables, step, stage.partition_key).to_dict("records")
        self.items_of: dict[str, list[str]] = defaultdict(list)  # cache key -> items (equal calls share one)
        for item, call in calls.items():
            self.items_of[call.key].append(item)
        self.answers = Answers()
        self.now = utc_now()
        self.grace = timedelta(seconds=config.batch_list_grace_s)

    def run(self) -> Answers:
        jobs = BatchJobs(self.client, recorded={r["job_id"] for r in self.rows if r["job_id"]})
        self._watch_sent_again(jobs)
        self._collect_finished(jobs)
        self._reconcile(jobs)
        to_batch, to_online = [], []
        for key, items in self.items_of.items():
            if items[0] in self.answers.results or items[0] in self.answers.pending:
                continue
            hit = self.client.cached(self.calls[items[0]])
            if hit is not None:
                self._settle(key, hit)
                continue
            history = [(r["state"], r["reason"], r["job_id"], r["intent"]) for r in self.rows if r["cache_key"] == key]
            step = next_step(history, max_rounds=self.config.batch_max_rounds, fallback=self.config.batch_fallback)
            if step.action in ("pending", "reconcile"):  # reconcile: the list could not be read, or lags the create
                self.answers.pending.update({item: step.job_id or step.intent for item in items})
            elif step.action == "give_up":
                self._settle(key, LLMError("batch_failed", step.reason))
            else:
                (to_batch if step.action == "batch" else to_online).append(key)
        self._ask_online(to_online)
        self._submit(jobs, to_batch)
        self._collect_duplicates(jobs)
        self._write()
        return self.answers

    def _write(self) -> None:
        self.tables.write(BATCH_TABLE, history_key(self.step, self.stage.partition_key),
                          pd.DataFrame(self.rows, columns=REQUEST_COLUMNS))

    def _collect_finished(self, jobs: BatchJobs) -> None:
        for job_id, rows, status, collected in self._ended_jobs(jobs, SUBMITTED, "batch job", "asking again next run"):
            self.answers.jobs_collected.append(job_id)
            for row in rows:
                outcome = collected.get(row["cache_key"])
                if outcome is None:  # an item no longer in the stage's input
                    outcome = LLMError("batch_expired", f"not collected: the item left the input ({status.state})")
                row.update(state=ANSWERED if isinstance(outcome, LLMResult) else
                           EXPIRED if outcome.kind == "batch_expired" else FAILED,
                           reason="" if isinstance(outcome, LLMResult) else str(outcome), finished_at=self.now,
                           cost_usd=outcome.cost_usd if isinstance(outcome, LLMResult) else 0.0)
                if row["cache_key"] in self.items_of and isinstance(outcome, LLMResult):
                    self._settle(row["cache_key"], outcome, job_id)  # a failure goes to its next round below

    def _ended_jobs(
        self, jobs: BatchJobs, state: str, what: str, retry_note: str
    ) -> Iterator[tuple[str, list[dict], Any, dict]]:
        """(job id, its rows in `state`, its status, what it answered by cache key) of each job with rows in
        `state` that has ended. A job the provider cannot read now is logged (as `what`, with `retry_note`)
        and left for a later run."""
        for job_id in sorted({r["job_id"] for r in self.rows if r["state"] == state}):
            rows = [r for r in self.rows if r["job_id"] == job_id and r["state"] == state]
            try:
                status = jobs.status(job_id)
                if not status.done:
                    continue
                keys = [r["cache_key"] for r in rows if r["cache_key"] in self.items_of]
                collected = jobs.collect(job_id, [self.calls[self.items_of[k][0]] for k in keys])
            except LLMError as exc:
                self.stage.log.warning(f"{what} {job_id}: cannot read it now ({exc}); {retry_note}")
                continue
            yield job_id, rows, status, collected

    def _intent_rows(self, state: str, intent_id: str) -> tuple[list[dict], Intent, datetime]:
        """The rows of `intent_id` in `state`, the intent (its calls still in the input) and its record time."""
        rows = [r for r in self.rows if r["state"] == state and r["intent"] == intent_id]
        calls = [self.calls[self.items_of[r["cache_key"]][0]] for r in rows if r["cache_key"] in self.items_of]
        name = f"{intent_id} haic {self.step} {self.stage.partition_key} (sent again)"
        return rows, Intent(intent_id, name, calls), min(r["submitted_at"] for r in rows)

    def _watch_sent_again(self, jobs: BatchJobs) -> None:
        """Intents sent again while no list showed their first create's job: until the job that
        answers them is collected, that job may still show up; found, it is a second job of the
        intent (cancelled, then collected and counted)."""
        watched = {r["intent"]: r["job_id"] for r in self.rows if r["state"] == SUBMITTED and r["intent"]
                   and not pd.isna(r["sent_again_at"])}
        for intent_id, job_id in sorted(watched.items()):
            _, intent, recorded_at = self._intent_rows(SUBMITTED, intent_id)
            try:
                jobs.cancel_second_jobs(intent, job_id, recorded_at)
            except LLMError as exc:
                self.stage.log.warning(f"batch intent {intent_id}: cannot read the provider's jobs ({exc}); the "
                                       "next run looks for its first job again")

    def _reconcile(self, jobs: BatchJobs) -> None:
        """Intents recorded by a run that never wrote their job down: adopt the job the provider
        lists under the intent; none listed: wait while the list may still lag the create, then
        send the calls again under the same intent."""
        for intent_id in sorted({r["intent"] for r in self.rows if r["state"] == INTENT}):
            rows, intent, recorded_at = self._intent_rows(INTENT, intent_id)
            try:
                job_id = jobs.adopt(intent, recorded_at)
            except LLMError as exc:
                self.stage.log.warning(f"batch intent {intent_id}: cannot read the provider's jobs ({exc}); "
                                       "its items wait for the next run")
                continue
            if job_id is not None:
                self.stage.log.info(f"batch intent {intent_id}: adopted job {job_id} ({len(rows)} requests), made by "
                                    "an earlier attempt that did not record it")
                self.answers.jobs_adopted.append(job_id)
                self._submitted(intent_id, job_id)
                continue
            wait_until = max(self._send_again_after(r) for r in rows)
            if self.now < wait_until:
                self._log_waiting(intent_id, wait_until, len(rows))
                continue
            left = {id(r) for r in rows if r["cache_key"] not in self.items_of}  # items no longer in the input
            self.rows = [r for r in self.rows if id(r) not in left]
            self.stage.log.info(f"batch intent {intent_id}: no list showed its job by {wait_until:{TIME_FORMAT}}; "
                                f"its {len(intent.calls)} requests go out again under it")
            if intent.calls:
                self._send([intent], jobs, recorded_at)

    def _log_waiting(self, intent_id: str, wait_until: datetime, requests: int) -> None:
        self.stage.log.info(f"batch intent {intent_id} not listed yet; waiting until {wait_until:{TIME_FORMAT}} "
                            f"before sending its {requests} requests again")

    def _send_again_after(self, row: dict) -> datetime:
        # Rows written before the column existed: the grace counts from the record time.
        return row["submitted_at"] + self.grace if pd.isna(row["send_again_after"]) else row["send_again_after"]

    def _submitted(self, intent_id: str, job_id: str) -> None:
        for row in self.rows:
            if row["state"] == INTENT and row["intent"] == intent_id:
                row.update(state=SUBMITTED, job_id=job_id)
                self.answers.pending.update({item: job_id for item in self.items_of.get(row["cache_key"], [])})

    def _ask_online(self, keys: list[str]) -> None:
        outcomes = map_concurrent(lambda k: self.client.answer(self.calls[self.items_of[k][0]]), keys,
                                  self.client.concurrency)
        for outcome in outcomes:
            value = outcome.value if outcome.ok else outcome.error
            self._record(outcome.item, "", ONLINE_ANSWERED if outcome.ok else ONLINE_FAILED,
                         "" if outcome.ok else str(value), finished=True)
            self._settle(outcome.item, value)

    def _submit(self, jobs: BatchJobs, keys: list[str]) -> None:
        if not keys:
            return
        name = f"haic {self.step} {self.stage.partition_key}"
        intents = jobs.plan([self.calls[self.items_of[k][0]] for k in keys], name)
        for intent in intents:
            for call in intent.calls:
                self._record(call.key, "", INTENT, "", intent=intent.id)
        self._send(intents, jobs)

    def _send(self, intents: list[Intent], jobs: BatchJobs, recorded_at: datetime | None = None) -> None:
        """Send each intent's create request (`recorded_at`: when it was first recorded, for one sent
        again). Its rows are on disk first, so whoever runs next can find what this run made."""
        for row in self.rows:
            if row["state"] == INTENT and row["intent"] in {i.id for i in intents}:
                row["send_again_after"] = self.now + self.grace
                if recorded_at is not None:
                    row["sent_again_at"] = self.now
        self._write()
        for n, intent in enumerate(intents):
            try:
                job_id = jobs.submit_intent(intent, recorded_at, send_again=self.grace <= timedelta(0))
            except LLMError as exc:
                # This intent may have made a job (its rows stay; the next run looks for it); later ones were not sent.
                unsent = {i.id for i in intents[n + 1:]}
                self.rows = [r for r in self.rows if not (r["state"] == INTENT and r["intent"] in unsent)]
                for later in intents[n:]:
                    for call in later.calls:
                        self._settle(call.key, exc)
                break
            if job_id is None:  # the create failed and no list shows its job yet: the next run looks again
                self._log_waiting(intent.id, self.now + self.grace, len(intent.calls))
                for call in intent.calls:
                    self.answers.pending.update({item: intent.id for item in self.items_of[call.key]})
                continue
            self.answers.jobs_submitted.append(job_id)
            if intent.id in jobs.sent_again:
                for row in self.rows:
                    if row["state"] == INTENT and row["intent"] == intent.id:
                        row["sent_again_at"] = self.now
            self._submitted(intent.id, job_id)
            self.stage.log.info(f"{intent.name}: {len(intent.calls)} requests in batch job {job_id}; "
                                "the llm_batch_sensor ingests them when it ends")

    def _collect_duplicates(self, jobs: BatchJobs) -> None:
        """Record the second jobs found this run, and collect every cancelled duplicate that has
        ended: what it answered was billed, so it is priced and counted (and cached)."""
        for job_id, intent in jobs.duplicates.items():
            self.answers.jobs_duplicate.append(job_id)
            for call in intent.calls:
                if call.key in self.items_of:
                    self._record(call.key, job_id, DUPLICATE, "second job of one intent: cancelled", intent=intent.id)
        for _, rows, _, collected in self._ended_jobs(jobs, DUPLICATE, "duplicate batch job", "next run"):
            for row in rows:
                outcome = collected.get(row["cache_key"])
                billed = outcome.cost_usd if isinstance(outcome, LLMResult) else 0.0
                row.update(state=DUPLICATE_COLLECTED, finished_at=self.now, cost_usd=billed,
                           reason=f"second job of one intent, cancelled: {'answered (billed)' if billed else 'not billed'}")
                self.answers.duplicate_cost_usd += billed

    def _record(self, key: str, job_id: str, state: str, reason: str, *, finished: bool = False,
                intent: str = "") -> None:
        rounds = [r for r in self.rows if r["cache_key"] == key and r["state"] not in DUPLICATE_STATES]
        round_no = 1 + len(rounds) if state not in DUPLICATE_STATES else max([0, *(r["round"] for r in rounds)])
        for item in self.items_of[key][:1]:
            self.rows.append({"stage": self.step, "partition": self.stage.partition_key, "item_id": item,
                              "cache_key": key, "job_id": job_id, "round": round_no, "state": state,
                              "reason": reason, "provider": self.client.provider, "model": self.client.model,
                              "submitted_at": self.now, "finished_at": self.now if finished else pd.NaT,
                              "intent": intent, "cost_usd": 0.0, "send_again_after": pd.NaT,
                              "sent_again_at": pd.NaT})

    def _settle(self, key: str, outcome: LLMResult | LLMError, job_id: str = "") -> None:
        for item in self.items_of[key]:
            self.answers.results[item] = outcome
            if job_id:
                self.answers.batch_job[item] = job_id
