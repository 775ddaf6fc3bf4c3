"""Scene cuts -> candidate clips (ids made by `clip_id_for`, read back by `video_id_of_clip_id`),
and the paper's length rule (keep 5 s <= length <= 20 s).

Pure: cut times and frames in, clips and `Decision`s out. No decoding, no I/O.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from haic_core.decisions import Decision, dropped, kept

MIN_CLIP_LENGTH_S = 5.0  # paper: keep clips 5 s <= length <= 20 s
MAX_CLIP_LENGTH_S = 20.0
# Lengths are compared at millisecond precision: a 200-frame clip at 10 fps is 20.0 s, but
# summing float frame times can give 20.000000000000004, which must not count as "> 20 s".
LENGTH_DECIMALS = 3


@dataclass(frozen=True)
class CandidateClip:
    """One single-scene window [start_s, end_s) of a video; frames [start_frame, end_frame)."""

    clip_id: str
    video_id: str
    start_s: float
    end_s: float
    start_frame: int
    end_frame: int  # exclusive
    fps: float
    length_s: float

    @property
    def frame_count(self) -> int:
        return self.end_frame - self.start_frame


# A clip id is "<video_id>-<the first 10 hex digits of the window's SHA-1>".
_CLIP_HASH_DIGITS = 10
_CLIP_ID = re.compile(rf"(?P<video_id>.+)-[0-9a-f]{{{_CLIP_HASH_DIGITS}}}")


def clip_id_for(video_id: str, start_s: float, end_s: float) -> str:
    """Deterministic clip id: the video id plus a short hash of the window (ms precision)."""
    key = f"{video_id}|{start_s:.3f}|{end_s:.3f}"
    return f"{video_id}-{hashlib.sha1(key.encode()).hexdigest()[:_CLIP_HASH_DIGITS]}"


def video_id_of_clip_id(clip_id: str) -> str | None:
    """The video id in a clip id that `clip_id_for` made, else None (an id from elsewhere).

    Only the shape is checked: the hash cannot be recomputed without the clip's window.
    """
    match = _CLIP_ID.fullmatch(clip_id)
    return match.group("video_id") if match else None


def judge_clip_length(
    clip: CandidateClip,
    min_length_s: float = MIN_CLIP_LENGTH_S,
    max_length_s: float = MAX_CLIP_LENGTH_S,
) -> Decision:
    """Keep a clip whose length is within [min_length_s, max_length_s] (both inclusive)."""
    length = round(clip.length_s, LENGTH_DECIMALS)
    common = dict(item_kind="clip", parent_id=clip.video_id, metric="clip_length_s", value=length,
                  detail={"start_s": clip.start_s, "end_s": clip.end_s,
                          "start_frame": clip.start_frame, "end_frame": clip.end_frame,
                          "fps": clip.fps, "min_length_s": min_length_s,
                          "max_length_s": max_length_s})
    if length < min_length_s:
        return dropped(clip.clip_id, f"scene {length:.2f} s < {min_length_s} s",
                       threshold=min_length_s, **common)
    if length > max_length_s:
        return dropped(clip.clip_id, f"scene {length:.2f} s > {max_length_s} s",
                       threshold=max_length_s, **common)
    return kept(clip.clip_id, f"scene {length:.2f} s within [{min_length_s}, {max_length_s}] s",
                threshold=min_length_s, **common)


def split_video_into_clips(
    video_id: str,
    cut_times_s: Sequence[float],
    cut_frames: Sequence[int],
    duration_s: float,
    frame_count: int,
    fps: float,
    min_length_s: float = MIN_CLIP_LENGTH_S,
    max_length_s: float = MAX_CLIP_LENGTH_S,
    window: tuple[float, float] | None = None,
) -> tuple[list[CandidateClip], list[Decision]]:
    """Every scene of the video as a clip — [0, cut1), [cut1, cut2), ..., [last cut, duration) —
    with one length `Decision` per clip (same order). No cuts means one scene spanning the
    whole video. With a `window` (the metadata row's [start, end] seconds), scenes are cut to it
    and scenes outside it are no candidates; each decision records the window.
    """
    if len(cut_times_s) != len(cut_frames):
        raise ValueError("cut_times_s and cut_frames must have the same length")
    starts = [(0.0, 0)] + [(float(t), int(f)) for t, f in zip(cut_times_s, cut_frames)]
    ends = starts[1:] + [(float(duration_s), int(frame_count))]
    clips = []
    for (start_s, start_frame), (end_s, end_frame) in zip(starts, ends):
        if end_s <= start_s:  # a cut at time 0 or at the very end adds no scene
            continue
        clips.append(CandidateClip(
            clip_id=clip_id_for(video_id, start_s, end_s),
            video_id=video_id,
            start_s=start_s,
            end_s=end_s,
            start_frame=start_frame,
            end_frame=end_frame,
            fps=float(fps),
            length_s=round(end_s - start_s, LENGTH_DECIMALS),
        ))
    if window is None:
        return clips, [judge_clip_length(c, min_length_s, max_length_s) for c in clips]
    clips = [c for c in (_within(c, *window) for c in clips) if c is not None]
    decisions = [judge_clip_length(c, min_length_s, max_length_s) for c in clips]
    for decision in decisions:
        decision.detail["window_s"] = [float(window[0]), float(window[1])]
    return clips, decisions


def _within(clip: CandidateClip, start_s: float, end_s: float) -> CandidateClip | None:
    """The part of `clip` inside [start_s, end_s] (frames moved by the clip's rate), or None."""
    start, end = max(clip.start_s, start_s), min(clip.end_s, end_s)
    if end <= start:
        return None
    if (start, end) == (clip.start_s, clip.end_s):
        return clip
    return CandidateClip(
        clip_id=clip_id_for(clip.video_id, start, end), video_id=clip.video_id, start_s=start, end_s=end,
        start_frame=clip.start_frame + round((start - clip.start_s) * clip.fps),
        end_frame=clip.end_frame - round((clip.end_s - end) * clip.fps), fps=clip.fps,
        length_s=round(end - start, LENGTH_DECIMALS))


def at_most_per_video(clips: Sequence[CandidateClip], decisions: Sequence[Decision],
                      most: int) -> list[Decision]:
    """The decisions (same order) with each video's kept clips after its `most` earliest dropped
    with their rank: a long video must not flood the set, nor the later stages' work."""
    rank: dict[str, int] = {}
    capped = list(decisions)
    order = sorted(range(len(clips)), key=lambda i: (clips[i].video_id, clips[i].start_s))
    for i in order:
        clip, decision = clips[i], decisions[i]
        if decision.verdict != "kept":
            continue
        n = rank[clip.video_id] = rank.get(clip.video_id, 0) + 1
        if n > most:
            capped[i] = dropped(clip.clip_id, f"clip {n} of its video: more than {most} clips of one video",
                                item_kind="clip", parent_id=clip.video_id, metric="clips_of_video",
                                value=float(n), threshold=float(most), detail=decision.detail)
    return capped
