"""What-if thresholds: which settings can be re-decided from the ledger's stored values, and how.

Every stage writes, per item, the deciding measurement and its `detail` (per-frame people counts
and coverages, both motion values, a clip's window, a video's probed size). A threshold-only
change can therefore be re-decided without decoding anything: `haic_core.whatif_engine` runs one
SQL file per stage (sql/whatif_<stage>.sql) over the stored rows, then carries the new verdicts
down the stage chain. This module says which settings that holds for (`REDECIDED`), which it does
not and why (`NEEDS_MORE`), and how an item reaches a stage (`CHAIN`). Pure data and parsing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import yaml

# Settings re-decided from stored values, per stage, with the SQL parameter each one fills.
REDECIDED: dict[str, tuple[str, ...]] = {
    "metadata_filtered": ("min_short_side_px", "min_long_side_px"),
    "videos": ("min_short_side_px", "min_long_side_px", "max_duration_s"),
    "clips": ("min_length_s", "max_length_s", "max_clips_per_video"),
    "human_presence": ("min_people", "max_people", "min_coverage"),
    "action_filtered": ("motion_l1_min", "affine_residual_min"),
    "caption_judgement": ("min_judge_score",),
}

# Settings that decide a verdict but need more than the stored values: not re-decided, and why:
# (stage, its settings that one reason rules out, the reason).
_NEEDS_MORE_REASONS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("clips", ("detector", "threshold", "min_scene_len", "frame_skip", "downscale"),
     "scene cuts need the video's frames (PySceneDetect)"),
    ("human_presence", ("samples",), "other sampled instants need decoding and the pose model"),
    ("human_presence", ("pose_fps",), "other 1 fps instants need decoding and the pose model"),
    ("human_presence", ("min_person_score",), "counting people at another score needs every box per frame; the "
                                              "ledger keeps only the counts and coverages at the stored score"),
    ("human_presence", ("coverage_mode",), "another coverage needs every box per frame; the ledger keeps the "
                                           "coverage of the stored mode"),
    ("pose_tracks", ("min_iou", "min_person_score"),
     "tracklets are linked from the detections (pose_tracks re-links them)"),
    ("action_filtered", ("pair_aggregate",), "the aggregate over pairs needs every pair's value at full precision"),
    ("action_filtered", ("track_aggregate",),
     "the aggregate over tracklets needs every pair's value at full precision"),
    ("action_filtered", ("residual_track_aggregate",),
     "the aggregate over tracklets needs every pair's residual at full precision"),
    ("action_filtered", ("min_keypoint_score", "min_valid_keypoints"),
     "needs the keypoints (the L1 and the affine fit are recomputed)"),
    ("action_filtered", ("min_track_pairs",), "needs every pair's value at full precision"),
    ("caption_judgement", ("min_words", "max_words"), "the format check reads the caption's text"),
    ("caption_judgement", ("llm_judge",), "turning the judge on or off needs the LLM's answers"),
)
NEEDS_MORE: dict[tuple[str, str], str] = {
    (stage, setting): why for stage, settings, why in _NEEDS_MORE_REASONS for setting in settings}

# How an item reaches each stage of the accumulation and HAICTrain chain: (stage, upstream stage,
# whether the stage decides on the upstream's own items). A row's upstream row is the same item at
# the upstream stage, else its parent there (a clip's video at `videos`).
CHAIN: tuple[tuple[str, str | None, bool], ...] = (
    ("raw_metadata", None, True),
    ("metadata_filtered", "raw_metadata", True),
    ("videos", "metadata_filtered", True),
    ("clips", "videos", False),
    ("human_presence", "clips", True),
    ("pose_tracks", "human_presence", True),
    ("action_filtered", "pose_tracks", True),
    ("captions", "action_filtered", True),
    ("caption_judgement", "captions", True),
)
CHAIN_STAGES: tuple[str, ...] = tuple(stage for stage, _, _ in CHAIN)

# A value the ledger keeps rounded to 6 decimals (in `detail`) cannot settle a comparison this close.
ROUNDED_TOLERANCE = 5e-7
# Predicted verdicts besides the ledger's own: `gone` (the item no longer reaches the stage) and
# `unknown` (it does, but nothing stored says how the stage decides it).
GONE, UNKNOWN = "gone", "unknown"


@dataclass(frozen=True)
class Assignment:
    """One `--set STAGE.SETTING=VALUE`."""

    stage: str
    setting: str
    value: Any

    def __str__(self) -> str:
        return f"{self.stage}.{self.setting}={self.value}"


def parse_assignments(texts: Iterable[str]) -> list[Assignment]:
    """`STAGE.SETTING=VALUE` strings as assignments; VALUE is read as YAML (0.12, 8, true, min)."""
    out, seen = [], set()
    for text in texts:
        name, sep, raw = str(text).partition("=")
        stage, dot, setting = name.strip().partition(".")
        if not sep or not dot or not stage or not setting or not raw.strip():
            raise ValueError(f"--set {text!r}: expected STAGE.SETTING=VALUE, e.g. action_filtered.motion_l1_min=0.12")
        if (stage, setting) in seen:
            raise ValueError(f"--set {stage}.{setting} is given twice")
        seen.add((stage, setting))
        try:
            value = yaml.safe_load(raw.strip())
        except yaml.YAMLError:
            value = raw.strip()
        out.append(Assignment(stage, setting.strip(), value))
    return out


def why_not_redecided(stage: str, setting: str) -> str | None:
    """None when `stage.setting` is re-decided from stored values; otherwise why not."""
    if setting in REDECIDED.get(stage, ()):
        return None
    reason = NEEDS_MORE.get((stage, setting))
    if reason:
        return reason
    if stage not in CHAIN_STAGES:
        return f"{stage} is not on the curation chain whatif re-decides ({', '.join(CHAIN_STAGES)})"
    if stage in ("captions",):
        return "captions are an LLM's answers"
    return "not a threshold: it changes how the stage runs (or which items fail), not what it keeps"


@dataclass(frozen=True)
class WhatIfPlan:
    """What one what-if re-decides: the effective settings of each re-decided stage (the deployment's,
    with the assignments applied), and the assignments it cannot honour, with why."""

    settings: Mapping[str, Mapping[str, Any]]  # stage -> the REDECIDED settings' values
    not_redecided: tuple[tuple[str, str], ...]  # (STAGE.SETTING=VALUE, why)

    @property
    def stages(self) -> tuple[str, ...]:
        return tuple(s for s in CHAIN_STAGES if s in self.settings)


def plan(assignments: Iterable[Assignment], effective: Mapping[str, Mapping[str, Any]],
         shared_from: Mapping[str, Mapping[str, str]] | None = None) -> WhatIfPlan:
    """The stages to re-decide and their settings.

    effective: stage -> its settings as a re-run would use them (the deployment's, defaults filled),
    *with the assignments applied*; shared_from: stage -> {setting: the stage whose section it is
    read from} (a setting shared by two stages changes both, as in settings.yaml)."""
    shared_from = shared_from or {}
    touched: dict[str, set[str]] = {}
    refused = []
    for a in assignments:
        readers = [a.stage] + [s for s, shared in shared_from.items() if shared.get(a.setting) == a.stage]
        why = {stage: why_not_redecided(stage, a.setting) for stage in readers}
        honoured = [stage for stage in readers if why[stage] is None]
        for stage in honoured:
            touched.setdefault(stage, set()).add(a.setting)
        if not honoured:  # the most specific reason: a stage that reads it, and what it would need
            refused.append((str(a), next((why[s] for s in readers if (s, a.setting) in NEEDS_MORE), why[a.stage])))
        elif len(honoured) < len(readers):
            refused.append((str(a), "also read by " + ", ".join(s for s in readers if why[s])
                            + ", which whatif does not re-decide"))
    settings = {stage: {name: effective[stage][name] for name in REDECIDED[stage]} for stage in touched}
    return WhatIfPlan(settings=settings, not_redecided=tuple(refused))
