"""What to do next with one LLM call of a partition in batch mode, from its recorded history.

A call (one cache key) is sent in rounds: a batch job, and after a failed or expired item, a new
batch job or an online call (by setting), until `max_rounds` rounds have been spent; then it is
the item's error. Pure data, no I/O: the Dagster layer (haic_platform/llm_batches.py)
reads and writes the history table, `llm_batch_requests`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

# A request's state in the history table.
INTENT = "intent"  # recorded before its job was sent: the job may or may not exist (found by its intent id)
SUBMITTED = "submitted"  # in a batch job that has not been collected
ANSWERED = "answered"  # the batch job answered it (cached)
FAILED = "failed"  # the batch job answered it with an error, or the job failed
EXPIRED = "expired"  # the job expired or was cancelled before answering it
ONLINE_ANSWERED = "online_answered"
ONLINE_FAILED = "online_failed"
FAILED_STATES = frozenset({FAILED, EXPIRED, ONLINE_FAILED})
# A second job of one intent (a create that failed on our side but not at the provider): cancelled on
# sight, then collected so that what it billed is counted. Not a round of the call.
DUPLICATE = "duplicate"  # cancelled, not yet collected
DUPLICATE_COLLECTED = "duplicate_collected"
DUPLICATE_STATES = frozenset({DUPLICATE, DUPLICATE_COLLECTED})

# `send_again_after`: an intent whose job no list has shown is not sent again before this time (its
# create may have made a job that the provider's eventually consistent list does not show yet).
# `sent_again_at`: when its calls were last sent again under the same intent; until the job that
# answers them is collected, runs look for the first create's job (a second job of the intent).
REQUEST_COLUMNS = ["stage", "partition", "item_id", "cache_key", "job_id", "round", "state", "reason",
                   "provider", "model", "submitted_at", "finished_at", "intent", "cost_usd",
                   "send_again_after", "sent_again_at"]
TIME_COLUMNS = ("submitted_at", "finished_at", "send_again_after", "sent_again_at")

Action = Literal["pending", "batch", "online", "give_up", "reconcile"]
Fallback = Literal["batch", "online"]


@dataclass(frozen=True)
class NextStep:
    action: Action
    reason: str = ""
    job_id: str = ""
    intent: str = ""


def next_step(history: Sequence[tuple[str, str, str]], *, max_rounds: int, fallback: Fallback) -> NextStep:
    """The next step for a call that the cache does not answer.

    `history`: its (state, reason, job_id, intent) rows in round order. No history: a first batch
    round. Recorded as an intent only (the run that sent it did not write the job down): look
    for its job at the provider. Still in a job: wait for it. Failed, expired: the fallback while
    rounds are left, else give up with the last reason. Answered but no longer cached (the cache
    was removed): ask again in a batch job. Rows of cancelled duplicate jobs do not count.
    """
    if max_rounds < 1:
        raise ValueError("max_rounds must be >= 1")
    history = [row for row in history if row[0] not in DUPLICATE_STATES]
    if not history:
        return NextStep("batch")
    state, reason, job_id, intent = history[-1]
    if state == INTENT:
        return NextStep("reconcile", intent=intent)
    if state == SUBMITTED:
        return NextStep("pending", job_id=job_id)
    if state not in FAILED_STATES:
        return NextStep("batch")
    if len(history) < max_rounds:
        return NextStep(fallback, reason=reason)
    return NextStep("give_up", reason=f"{reason} (after {len(history)} rounds)")


def chunk_by_size(sizes: Sequence[int], max_bytes: int) -> list[list[int]]:
    """Indices of `sizes` split, in order, into groups of at most `max_bytes` (a single item over
    the limit is a group of its own): one batch job per group."""
    groups: list[list[int]] = []
    total = 0
    for index, size in enumerate(sizes):
        if not groups or (total + size > max_bytes and groups[-1]):
            groups.append([])
            total = 0
        groups[-1].append(index)
        total += size
    return groups
