"""The unit of lineage: one stage's verdict on one item.

Every stage of the pipeline turns its measurements into `Decision`s; the Dagster layer adds
partition, stage, config hash, code version, run id and time and writes them to the ledger.
Pure data: no I/O, no Dagster.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

# `pending`: not decided yet, the item's LLM call waits in a batch job (replaced by its verdict
# when the job is ingested).
Verdict = Literal["kept", "dropped", "error", "pending"]
VERDICTS: tuple[str, ...] = ("kept", "dropped", "error", "pending")
BATCH_PENDING = "batch_pending"


@dataclass(frozen=True)
class Decision:
    """What one stage decided about one item, and on what evidence.

    `code` names the reason so that reasons group (``low_box_coverage``, ``static_keypoints``);
    `metric`/`value`/`threshold` carry the deciding measurement (e.g. ``keypoint_l1``, 0.041,
    0.085) and `detail` the rest (frames 6/16), so that "why was X dropped?" is answered with
    numbers, not prose only. A decision made without a code gets one from its metric and values
    (`reason_code`), so every decision has one.
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
    code: str = ""

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")
        if not self.item_id:
            raise ValueError("a decision needs an item id")
        if not self.code:
            object.__setattr__(self, "code", reason_code(self.verdict, self.reason, self.metric, self.value,
                                                         self.threshold))
        elif not _CODE.fullmatch(self.code):
            raise ValueError(f"a reason code is lower_snake_case, got {self.code!r}")

    def margin(self) -> float:
        """How far the measured value lies from the threshold, relative to it (0 = on the line;
        inf when nothing was measured): the drops nearest the line teach most about a threshold."""
        if self.value is None or self.threshold is None or self.value != self.value:
            return float("inf")
        return abs(self.value - self.threshold) / max(abs(self.threshold), 1e-12)

    def message(self) -> str:
        """One line for logs, tables and `haic why`: the code, the reason with its numbers, and the
        measured value against the threshold."""
        text = f"{self.code}: {self.reason}"
        if self.metric and self.value is not None and self.value == self.value:
            measured = f"{self.metric}={self.value:.6g}"
            if measured not in self.reason:
                text += f" [{measured}" + (f", threshold {self.threshold:.6g}]" if self.threshold is not None else "]")
        return text


# Codes of drops decided by a measurement, by metric: (code when below the threshold, code when above).
METRIC_CODES: dict[str, tuple[str, str]] = {
    "short_side_px": ("low_resolution", "low_resolution"),
    "has_verb": ("no_verb", "no_verb"),
    "clip_length_s": ("too_short", "too_long"),
    "duration_s": ("too_short", "too_long"),
    "people_count": ("too_few_people", "too_many_people"),
    "box_coverage": ("low_box_coverage", "low_box_coverage"),
    "keypoint_l1": ("static_keypoints", "static_keypoints"),
    "affine_residual": ("camera_motion", "camera_motion"),
    "clips_of_video": ("too_many_clips_of_video", "too_many_clips_of_video"),
    "words": ("caption_too_short", "caption_too_long"),
    "judge_score": ("low_judge_score", "low_judge_score"),
}


def reason_code(verdict: str, reason: str, metric: str | None = None, value: float | None = None,
                threshold: float | None = None) -> str:
    """The code of a decision made without one: `kept`; a measured drop's code by its metric and on
    which side of the threshold it fell; otherwise the reason's leading words (numbers, quotes and
    what follows a colon left out), e.g. 'duplicate id (row 3)' -> `duplicate_id`."""
    if verdict == "kept":
        return "kept"
    if verdict == "dropped" and metric in METRIC_CODES:
        below, above = METRIC_CODES[metric]
        if value is None or value != value:
            return f"unmeasured_{metric}"
        return above if threshold is not None and value > threshold else below
    head = re.sub(r"'[^']*'|\"[^\"]*\"", " ", reason).split(":", 1)[0].split("(", 1)[0]
    words = []
    for word in re.sub(r"[^a-z]+", " ", head.lower()).split():
        if word in _STOP:
            break
        if word not in _FILLER:
            words.append(word)
    return "_".join(words[:3]) or verdict


_CODE = re.compile(r"[a-z][a-z0-9_]*")
_FILLER = {"a", "an", "the", "its"}
_STOP = {"of", "by", "in", "on", "at", "for", "after", "before", "than", "with", "as", "is", "or", "from", "to"}


def kept(item_id: str, reason: str = "passed", **kw: Any) -> Decision:
    return Decision(item_id=item_id, verdict="kept", reason=reason, **kw)


def dropped(item_id: str, reason: str, **kw: Any) -> Decision:
    return Decision(item_id=item_id, verdict="dropped", reason=reason, **kw)


def error(item_id: str, reason: str, **kw: Any) -> Decision:
    return Decision(item_id=item_id, verdict="error", reason=reason, **kw)


def pending(item_id: str, job_id: str, **kw: Any) -> Decision:
    """An item whose LLM call sits in batch job `job_id`: where it is, until its job is ingested."""
    return Decision(item_id=item_id, verdict="pending", reason=f"in batch job {job_id}", code=BATCH_PENDING,
                    detail={"batch_job": job_id}, **kw)


def teaching_examples(decisions: Iterable[Decision], per_group: int, kept: int | None = None) -> list[Decision]:
    """The decisions worth a picture: up to `kept` (default `per_group`) kept ones and, for each drop
    code, up to `per_group` drops, each group nearest the threshold first (the borderline cases show what a
    threshold does; a drop far from the line, e.g. a video with nobody in it, teaches little).
    Errors and pending items have no frames to show and are left out. Stable: ties keep the decisions' order."""
    groups: dict[tuple[str, str], list[Decision]] = {}
    for d in decisions:
        if d.verdict not in ("error", "pending"):
            groups.setdefault((d.verdict, d.code), []).append(d)
    chosen = []
    for (verdict, _), group in sorted(groups.items(), key=lambda kv: (kv[0][0] != "kept", kv[0][1])):
        limit = kept if verdict == "kept" and kept is not None else per_group
        chosen += sorted(group, key=Decision.margin)[:max(0, limit)]
    return chosen
