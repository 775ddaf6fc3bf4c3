"""The decision ledger's schema: one row per (stage, item) with the evidence and provenance.

`haic why` and `haic funnel` are queries over these rows (see sql/why.sql, sql/funnel.sql).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, is_dataclass
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

import pandas as pd

from haic_core.decisions import Decision

# The stages in pipeline order: the funnel, `haic why` and the statistics list them this way.
STAGE_ORDER: tuple[str, ...] = (
    "raw_metadata", "metadata_filtered", "videos", "clips", "human_presence", "pose_tracks",
    "action_filtered", "captions", "caption_judgement", "bench_captions", "qa_pairs", "qa_verified",
    "haicbench_split",
)

LEDGER_COLUMNS: dict[str, str] = {
    "item_id": "string",
    "parent_id": "string",
    "item_kind": "string",
    "source": "string",
    "partition": "string",
    "stage": "string",
    "verdict": "string",
    "reason": "string",
    "reason_code": "string",
    "metric": "string",
    "value": "Float64",
    "threshold": "Float64",
    "detail": "string",
    "config_hash": "string",
    "code_version": "string",
    "run_id": "string",
    "decided_at": "datetime64[us, UTC]",
}


def config_hash(config: Mapping[str, Any] | Any) -> str:
    """Stable short hash of a stage's configuration (dicts, dataclasses, pydantic models)."""
    if hasattr(config, "model_dump"):
        config = config.model_dump()
    elif is_dataclass(config):
        config = asdict(config)
    text = json.dumps(config, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def source_of_partition(partition: str) -> str:
    """Partition keys are '<source>__<shard>'; the ledger keeps the source for per-source funnels."""
    return partition.split("__", 1)[0]


def ledger_rows(decisions: Iterable[Decision], *, stage: str, partition: str, config_hash: str,
                code_version: str, run_id: str, decided_at: datetime | None = None) -> pd.DataFrame:
    when = decided_at or datetime.now(timezone.utc)
    source = source_of_partition(partition)
    records = [
        {
            "item_id": d.item_id,
            "parent_id": d.parent_id,
            "item_kind": d.item_kind,
            "source": source,
            "partition": partition,
            "stage": stage,
            "verdict": d.verdict,
            "reason": d.reason,
            "reason_code": d.code,
            "metric": d.metric,
            "value": d.value,
            "threshold": d.threshold,
            "detail": json.dumps(d.detail, sort_keys=True, default=str) if d.detail else None,
            "config_hash": config_hash,
            "code_version": code_version,
            "run_id": run_id,
            "decided_at": when,
        }
        for d in decisions
    ]
    frame = pd.DataFrame.from_records(records, columns=list(LEDGER_COLUMNS))
    return frame.astype(LEDGER_COLUMNS)


def verdict_summary(decisions: Iterable[Decision]) -> dict[str, Any]:
    """Counts by verdict, and per (verdict, reason code) the count and the decision nearest the
    threshold (its reason carries the numbers), most frequent code first, for asset metadata."""
    by_verdict: dict[str, int] = {"kept": 0, "dropped": 0, "error": 0, "pending": 0}
    groups: dict[tuple[str, str], list[Decision]] = {}
    for d in decisions:
        by_verdict[d.verdict] += 1
        if d.verdict != "kept":
            groups.setdefault((d.verdict, d.code), []).append(d)
    by_reason = [ReasonGroup(verdict, code, len(group), min(group, key=Decision.margin))
                 for (verdict, code), group in groups.items()]
    by_reason.sort(key=lambda g: (-g.items, g.verdict, g.code))
    return {"by_verdict": by_verdict, "by_reason": by_reason}


@dataclass(frozen=True)
class ReasonGroup:
    """The items one reason code dropped (or errored) in a partition, and the one nearest the line."""

    verdict: str
    code: str
    items: int
    nearest: Decision

    def line(self) -> str:
        return f"{self.code} x{self.items} (nearest: {self.nearest.item_id} {self.nearest.message()})"


def reason_class(reason: str) -> str:
    """A reason with its numbers masked, so free-text reasons group: 'scene 2.57 s < 5.0 s' -> 'scene # s < # s'."""
    return _NUMBER.sub("#", reason)


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
