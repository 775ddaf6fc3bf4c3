"""Retries of failed items (`haic retry`, haic_cli/retry.py): re-process only the items whose last verdict is `error`, keep every kept and
dropped row, and quarantine items that keep failing.

State: `tables/retry_attempts/<partition>.parquet`, one row per (stage, item_id) that was ever
retried: attempts so far, the last reason, whether it is quarantined, whether it was released.
An item whose retries have failed `max_attempts` times is *quarantined*: its ledger row stays
`error`, with the reason "quarantined after N attempts: <last reason>", and retries skip it
until `haic retry --release ITEM` (which also resets its count).

What runs: the main job for the partition, with the stages that have items to retry (and what
is downstream of them) selected, and the run tags below. The stage factory reads them through
`RetryScope.for_step`: a stage in `haic/retry_stages` gets only the rows of its retried items
as input, and its new decisions and table rows are merged with the previous ones
(`RetryScope.merge_ledger`, `RetryScope.merge_table`); a stage downstream of one gets only the
rows its upstream produced anew, and merges the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


RETRY_TAG = "haic/retry"  # "true" on a retry run
RETRY_STAGES_TAG = "haic/retry_stages"  # comma-separated stages whose error items are retried
RETRY_ITEMS_TAG = "haic/retry_items"  # how many items the run retries (for people; the set is in the plan)
ATTEMPTS_TABLE = "retry_attempts"
PLAN_TABLE = "retry_plan"  # tables/retry_plan/<partition>.parquet: (stage, item_id) the current retry re-processes
DEFAULT_MAX_ATTEMPTS = 3
ITEM_COLUMNS = ("clip_id", "video_id", "item_id")  # how an input row names the item it is about
ATTEMPT_COLUMNS = ["stage", "item_id", "attempts", "last_reason", "quarantined", "released"]
QUARANTINE_PREFIX = "quarantined after "


def empty_attempts() -> pd.DataFrame:
    return pd.DataFrame({"stage": pd.Series(dtype=str), "item_id": pd.Series(dtype=str),
                         "attempts": pd.Series(dtype="int64"), "last_reason": pd.Series(dtype=str),
                         "quarantined": pd.Series(dtype=bool), "released": pd.Series(dtype=bool)})


@dataclass
class RetryPlan:
    partition: str
    retry: dict[str, list[str]] = field(default_factory=dict)  # stage -> item ids to re-process
    quarantined: dict[str, list[str]] = field(default_factory=dict)  # stage -> item ids skipped

    @property
    def stages(self) -> list[str]:
        return [s for s, items in self.retry.items() if items]

    @property
    def count(self) -> int:
        return sum(len(items) for items in self.retry.values())

    def describe(self) -> list[str]:
        lines = []
        for stage, items in self.retry.items():
            lines.append(f"{stage}: retry {len(items)}: {', '.join(items[:10])}{' ...' if len(items) > 10 else ''}")
        for stage, items in self.quarantined.items():
            lines.append(f"{stage}: quarantined (skipped) {len(items)}: {', '.join(items[:10])}")
        return lines


def plan_retry(ledger: pd.DataFrame, attempts: pd.DataFrame, partition: str, stage: str | None = None,
               stage_order: list[str] | None = None) -> RetryPlan:
    """The items of `partition` (of `stage`, or of every stage) whose last verdict is `error`,
    less the quarantined ones. Shard-level errors (`shard:<partition>`) are not items: the whole
    partition is re-run for those (`haic run`)."""
    rows = ledger[(ledger["partition"] == partition) & (ledger["verdict"] == "error")]
    if stage is not None:
        rows = rows[rows["stage"] == stage]
    rows = rows[~rows["item_id"].astype(str).str.startswith("shard:")]
    held = set(zip(attempts.loc[attempts["quarantined"], "stage"], attempts.loc[attempts["quarantined"], "item_id"]))
    plan = RetryPlan(partition)
    order = {s: i for i, s in enumerate(stage_order or [])}
    for name in sorted(set(rows["stage"]), key=lambda s: (order.get(s, len(order)), s)):
        ids = sorted(set(rows.loc[rows["stage"] == name, "item_id"].astype(str)))
        retry = [i for i in ids if (name, i) not in held]
        skipped = [i for i in ids if (name, i) in held]
        if retry:
            plan.retry[name] = retry
        if skipped:
            plan.quarantined[name] = skipped
    return plan


def only_items(frame: pd.DataFrame, items: set[str]) -> pd.DataFrame:
    """The rows of an input table that are about `items` (by clip_id, video_id or item_id)."""
    keep = pd.Series(False, index=frame.index)
    for column in ITEM_COLUMNS:
        if column in frame:
            keep |= frame[column].astype(str).isin(items)
    return frame[keep]


def record_attempts(attempts: pd.DataFrame, stage: str, retried: list[str], new_ledger: pd.DataFrame,
                    max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> pd.DataFrame:
    """`attempts` after a retry of `retried` items of `stage` whose new rows are `new_ledger`:
    an item still in error counts one more attempt, and is quarantined at `max_attempts`;
    an item that succeeded leaves the table."""
    table = attempts.set_index(["stage", "item_id"]) if len(attempts) else empty_attempts().set_index(["stage", "item_id"])
    verdicts = dict(zip(new_ledger["item_id"].astype(str), new_ledger["verdict"]))
    reasons = dict(zip(new_ledger["item_id"].astype(str), new_ledger["reason"]))
    for item in retried:
        key = (stage, item)
        if verdicts.get(item) != "error":
            table = table.drop(key, errors="ignore")
            continue
        before = int(table.loc[key, "attempts"]) if key in table.index else 0
        count = before + 1
        table.loc[key, ["attempts", "last_reason", "quarantined", "released"]] = [
            count, reasons[item], count >= max_attempts, False]
    out = table.reset_index()[ATTEMPT_COLUMNS]
    return out.astype({"attempts": "int64", "quarantined": bool, "released": bool})


def quarantine_reasons(ledger_rows: pd.DataFrame, stage: str, attempts: pd.DataFrame) -> pd.DataFrame:
    """The ledger rows with each quarantined item's reason naming its attempts."""
    held = attempts[(attempts["stage"] == stage) & attempts["quarantined"]]
    counts = dict(zip(held["item_id"], held["attempts"]))
    out = ledger_rows.copy()
    for index, item in out["item_id"].astype(str).items():
        if item in counts and not str(out.at[index, "reason"]).startswith(QUARANTINE_PREFIX):
            out.at[index, "reason"] = f"{QUARANTINE_PREFIX}{counts[item]} attempts: {out.at[index, 'reason']}"
    return out


def merge_ledger(previous: pd.DataFrame | None, new: pd.DataFrame, retried: set[str]) -> pd.DataFrame:
    """A stage's ledger after a retry: every previous row of an item not retried (kept, dropped,
    quarantined errors), then the new rows. A previous row is replaced when its item, or the item
    it came from (`parent_id`: a clip of a retried video), was retried or has a new row."""
    if previous is None or previous.empty:
        return new.reset_index(drop=True)
    replaced = retried | set(new["item_id"].astype(str))
    gone = previous["item_id"].astype(str).isin(replaced)
    if "parent_id" in previous:
        gone |= previous["parent_id"].astype(str).isin(retried)
    return pd.concat([previous[~gone], new], ignore_index=True)


class RetryScope:
    """What a stage step of a retry run does differently (the stage factory's hook):
    `filter_inputs` before the body, `merge_table` on each output, `merge_ledger` on its rows."""

    def __init__(self, stage: str, partition: str, items: set[str], tables):
        self.stage, self.partition, self.items, self.tables = stage, partition, items, tables

    @classmethod
    def for_step(cls, context, stage: str, partition: str, tables) -> "RetryScope | None":
        if context.run.tags.get(RETRY_TAG) != "true":
            return None
        plan = tables.read(PLAN_TABLE, partition)
        return cls(stage, partition, set(plan["item_id"].astype(str)) if plan is not None else set(), tables)

    def filter_inputs(self, inputs: dict) -> dict:
        return {name: only_items(value, self.items) if isinstance(value, pd.DataFrame) else value
                for name, value in inputs.items()}

    def merge_table(self, name: str, frame: pd.DataFrame) -> pd.DataFrame:
        return merge_table(self.tables.read(name, self.partition), frame, self.items)

    def merge_ledger(self, rows: pd.DataFrame) -> pd.DataFrame:
        return merge_ledger(self.tables.read(f"ledger/{self.stage}", self.partition), rows, self.items)


def merge_table(previous: pd.DataFrame | None, new: pd.DataFrame, retried: set[str]) -> pd.DataFrame:
    """A stage's table after a retry: the previous rows not about retried items, then the new rows."""
    if previous is None or previous.empty:
        return new.reset_index(drop=True)
    return pd.concat([previous.drop(only_items(previous, retried).index), new], ignore_index=True)


def release(attempts: pd.DataFrame, item_id: str) -> tuple[pd.DataFrame, int]:
    """Release a quarantined item (every stage it is held in): its count starts again."""
    held = (attempts["item_id"] == item_id) & attempts["quarantined"]
    out = attempts.copy()
    out.loc[held, ["attempts", "quarantined", "released"]] = [0, False, True]
    return out.astype({"attempts": "int64", "quarantined": bool, "released": bool}), int(held.sum())


def retry_tags(plan: RetryPlan) -> dict[str, str]:
    return {RETRY_TAG: "true", RETRY_STAGES_TAG: ",".join(plan.stages), RETRY_ITEMS_TAG: str(plan.count)}
