"""The unit of lineage: one stage's verdict on one item.

Every stage of the pipeline turns its measurements into `Decision`s; the Dagster layer adds
partition, stage, config hash, code version, run id and time and writes them to the ledger.
Pure data: no I/O, no Dagster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Verdict = Literal["kept", "dropped", "error"]
VERDICTS: tuple[str, ...] = ("kept", "dropped", "error")


@dataclass(frozen=True)
class Decision:
    """What one stage decided about one item, and on what evidence.

    `metric`/`value`/`threshold` carry the deciding measurement (e.g. ``motion_l1``,
    0.041, 0.085) so that "why was X dropped?" is answered with numbers, not prose only.
    """

    item_id: str
    verdict: Verdict
    reason: str
    item_kind: str = "video"
    parent_id: str | None = None
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if not self.item_id:
            raise ValueError("a decision needs an item id")


def kept(item_id: str, reason: str = "passed", **kw: Any) -> Decision:
    return Decision(item_id=item_id, verdict="kept", reason=reason, **kw)


def dropped(item_id: str, reason: str, **kw: Any) -> Decision:
    return Decision(item_id=item_id, verdict="dropped", reason=reason, **kw)


def error(item_id: str, reason: str, **kw: Any) -> Decision:
    return Decision(item_id=item_id, verdict="error", reason=reason, **kw)
