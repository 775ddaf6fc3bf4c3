"""The metadata filter: resolution and "the description contains a verb"; and the same
resolution rule applied to the sizes the video stage probes.

The paper drops low-resolution videos and videos whose description has no verb (spaCy POS tags).
It gives no resolution cut-off; ours is on the short side and its default keeps WebVid's
596×336 previews. Unknown resolution is not a reason to drop: the video stage probes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping, Protocol, Sequence

import pandas as pd

from haic_core.decisions import Decision, dropped, kept

DEFERRED_RESOLUTION = "resolution unknown: deferred to the video probe"
# The verb test reads at most this many characters of a description. spaCy refuses texts over
# its max_length (1,000,000, error E088) and tags slowly long before that; a "description" this
# long is not a caption, and its first 100,000 characters settle whether it has a verb.
VERB_TEST_MAX_CHARS = 100_000


class PosTagger(Protocol):
    """What we need of a spaCy Language: `pipe` over texts yielding docs of tokens with `pos_`."""

    def pipe(self, texts: Iterable[str], batch_size: int = ...) -> Iterable[Iterable]: ...


@dataclass(frozen=True)
class ResolutionRule:
    min_short_side_px: int = 240
    min_long_side_px: int = 320

    def check(self, width: int | None, height: int | None) -> tuple[bool | None, str]:
        """(True/False/None for unknown, reason)."""
        if width is None or height is None or pd.isna(width) or pd.isna(height):
            return None, DEFERRED_RESOLUTION
        short, long_ = sorted((int(width), int(height)))
        if short < self.min_short_side_px:
            return False, f"low resolution {width}x{height}: short side {short} < {self.min_short_side_px} px"
        if long_ < self.min_long_side_px:
            return False, f"low resolution {width}x{height}: long side {long_} < {self.min_long_side_px} px"
        return True, f"resolution {width}x{height}"


def verb_flags(descriptions: Sequence[str], nlp: PosTagger, batch_size: int = 512) -> list[bool]:
    """For each description, whether spaCy tags at least one VERB in its first
    VERB_TEST_MAX_CHARS characters. Each distinct text is tagged once."""
    descriptions = [d[:VERB_TEST_MAX_CHARS] for d in descriptions]
    distinct = list(dict.fromkeys(d for d in descriptions if d))
    flags: dict[str, bool] = {}
    for text, doc in zip(distinct, nlp.pipe(distinct, batch_size=batch_size)):
        flags[text] = any(token.pos_ == "VERB" for token in doc)
    return [flags.get(d, False) for d in descriptions]


def filter_metadata(table: pd.DataFrame, nlp: PosTagger, rule: ResolutionRule,
                    batch_size: int = 512) -> tuple[pd.DataFrame, list[Decision]]:
    """Apply both tests to a normalized metadata table. Returns (kept rows, one decision per row).

    Kept rows gain `resolution_deferred` (True when the probe must settle the resolution).
    """
    descriptions = table["description"].fillna("").astype(str).tolist()
    has_verb = verb_flags(descriptions, nlp, batch_size=batch_size)
    decisions: list[Decision] = []
    keep_mask: list[bool] = []
    deferred: list[bool] = []
    for row, description, verb in zip(table.itertuples(index=False), descriptions, has_verb):
        ok, why = rule.check(row.width, row.height)
        detail = {"width": _int_or_none(row.width), "height": _int_or_none(row.height), "has_verb": verb}
        clipped = len(description) > VERB_TEST_MAX_CHARS
        if clipped:  # recorded: the verdict rests on the first VERB_TEST_MAX_CHARS characters only
            detail.update(description_chars=len(description), verb_test_chars=VERB_TEST_MAX_CHARS)
        tested = f" (in its first {VERB_TEST_MAX_CHARS} of {len(description)} characters)" if clipped else ""
        if ok is False:
            short = min(int(row.width), int(row.height))
            decision = dropped(row.video_id, why, metric="short_side_px", value=float(short),
                               threshold=float(rule.min_short_side_px), detail=detail)
        elif not description.strip():
            decision = dropped(row.video_id, "no description", metric="has_verb", value=0.0, code="no_description",
                               threshold=1.0, detail=detail)
        elif not verb:
            decision = dropped(row.video_id, "description has no verb" + tested, metric="has_verb", value=0.0,
                               threshold=1.0, detail={**detail, "description": description[:200]})
        else:
            reason = "has a verb" + tested + "; " + why
            decision = kept(row.video_id, reason, metric="has_verb", value=1.0, threshold=1.0,
                            detail={**detail, "deferred": ok is None})
        decisions.append(decision)
        keep_mask.append(decision.verdict == "kept")
        deferred.append(ok is None)
    # A boolean array, not a list: an empty list would select no *columns* of an empty table.
    out = table.assign(resolution_deferred=pd.Series(deferred, index=table.index, dtype=bool))
    out = out.loc[pd.Series(keep_mask, index=table.index, dtype=bool)].reset_index(drop=True)
    return out, decisions


def probed_resolution_decision(video_id: str, probe: Mapping, rule: ResolutionRule) -> Decision:
    """The resolution rule on a fetched video's probed size (the probe settles what the
    metadata left unknown); kept with what was probed, dropped with the rule's reason.

    `probe` has codec, width, height, fps, is_vfr, duration_s and frame_count.
    """
    ok, why = rule.check(probe["width"], probe["height"])
    detail = {k: probe[k] for k in ("codec", "width", "height", "fps", "is_vfr", "duration_s", "frame_count")}
    if probe.get("rotation_deg"):
        detail["rotation_deg"] = probe["rotation_deg"]
    short = float(min(probe["width"], probe["height"]))
    if not ok:
        return dropped(video_id, why, metric="short_side_px", value=short,
                       threshold=float(rule.min_short_side_px), detail=detail)
    return kept(video_id, f"probed {probe['codec']} {probe['width']}x{probe['height']} "
                          f"{probe['fps']:.2f} fps {probe['duration_s']:.2f} s" + (" (VFR)" if probe["is_vfr"] else ""),
                metric="short_side_px", value=short, threshold=float(rule.min_short_side_px), detail=detail)


def _int_or_none(value) -> int | None:
    return None if value is None or pd.isna(value) else int(value)
