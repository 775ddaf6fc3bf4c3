"""HAICTrain as training data: LLaVA-Video-style conversation records and a dataset card.

A record is what LLaVA-Video's loaders read (one JSON object per clip):

    {"id": ..., "video": "videos/<clip file>.mp4", "conversations": [
        {"from": "human", "value": "<image>\\n<question>"},
        {"from": "gpt", "value": <caption>}]}

plus, by default, `original_description` and `provenance` keys, which those loaders ignore and
which keep each record traceable to the run that made it. The human turn carries `<image>`
because that is the only media token LLaVA-NeXT's preprocessing recognises (it expands it into
the video's frame features); a `<video>` token would reach the model as plain text. `video` is
relative to the export root (LLaVA-Video's `--video_folder`): the clips are written to
`videos/` beside the records, and `clips_manifest.jsonl` maps each id to its file and to the
clip's object-store URI. Clip file names hold no `:` or `/` (`clip_file_name`).

A release of one partition is five files (`release_files`): the rows as JSONL and Parquet, the
conversation records, the clip manifest and the card. Pure functions: they return bytes, the
caller writes them (and copies the clips).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from haic_core.haic_train.caption_format import declared_subject_count
from haic_core.ledger import reason_class

RELEASE_COLUMNS = ["clip_id", "clip_uri", "caption", "original_description", "video_id", "provider", "model",
                   "prompt_version"]
MEDIA_TOKEN = "<image>"  # LLaVA-NeXT's DEFAULT_IMAGE_TOKEN, used for videos too
VIDEO_FOLDER = "videos"
CONVERSATIONS_FILE = "llava_video_conversations.json"
MANIFEST_FILE = "clips_manifest.jsonl"
DEFAULT_QUESTION = (
    "Describe the people in this video: first how many main subjects there are, then for each "
    "subject their appearance followed by all of their actions in order."
)


@dataclass(frozen=True)
class CaptionedClip:
    """One accepted HAICTrain row."""

    clip_id: str
    clip_uri: str
    caption: str
    original_description: str = ""
    provenance: Mapping[str, Any] = field(default_factory=dict)  # model, prompt version, run id …


def clip_file_name(clip_id: str, extension: str = ".mp4") -> str:
    """A clip's file name in an export: the id with every character outside [A-Za-z0-9._-] replaced
    by `_` (ids hold `:` and `/`, which break paths on some systems and in loaders); when anything was
    replaced, 8 hex digits of the id's sha256 keep two ids from sharing a name."""
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", clip_id).strip(".") or "clip"
    if safe != clip_id:
        safe = f"{safe}-{hashlib.sha256(clip_id.encode('utf-8')).hexdigest()[:8]}"
    return safe + extension


def export_video_path(clip_id: str) -> str:
    """Where a clip's video is, relative to the export root."""
    return f"{VIDEO_FOLDER}/{clip_file_name(clip_id)}"


def to_conversation_record(
    clip: CaptionedClip, *, question: str = DEFAULT_QUESTION, with_provenance: bool = True
) -> dict[str, Any]:
    if not clip.caption.strip():
        raise ValueError(f"clip {clip.clip_id} has an empty caption")
    record: dict[str, Any] = {
        "id": clip.clip_id,
        "video": export_video_path(clip.clip_id),
        "conversations": [
            {"from": "human", "value": f"{MEDIA_TOKEN}\n{question}"},
            {"from": "gpt", "value": clip.caption.strip()},
        ],
    }
    if with_provenance:
        record["original_description"] = clip.original_description
        record["provenance"] = dict(clip.provenance)
    return record


def to_conversation_records(
    clips: Iterable[CaptionedClip], *, question: str = DEFAULT_QUESTION, with_provenance: bool = True
) -> list[dict[str, Any]]:
    """Records in clip-id order (deterministic output for identical input); ids must be unique."""
    records = [
        to_conversation_record(c, question=question, with_provenance=with_provenance)
        for c in sorted(clips, key=lambda c: c.clip_id)
    ]
    duplicates = [k for k, n in Counter(r["id"] for r in records).items() if n > 1]
    if duplicates:
        raise ValueError(f"duplicate clip ids: {duplicates[:5]}")
    return records


def _table(rows: Sequence[tuple[str, Any]], header: tuple[str, str]) -> list[str]:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows]
    return lines


def dataset_card_markdown(
    clips: Sequence[CaptionedClip],
    *,
    name: str = "HAICTrain",
    source: str = "WebVid-10M",
    dropped_by_reason: Mapping[str, int] | None = None,
    provenance_keys: Sequence[str] = ("model", "prompt_version"),
    config: Mapping[str, Any] | None = None,
) -> str:
    """A markdown dataset card: what the data is, how many clips, caption statistics, which
    models/prompts produced it, and (optionally) what the judgement removed and why."""
    words = [len(c.caption.split()) for c in clips]
    subjects = Counter(declared_subject_count(c.caption.strip()) for c in clips)
    lines = [
        f"# {name}",
        "",
        f"Machine captions of human-action clips from {source}, in HAIC's standardized format: "
        "the number of main subjects first, then one paragraph per subject giving appearance "
        "before actions in chronological order. Each record pairs a clip with its caption and "
        "the clip's original description.",
        "",
        "## Counts",
        "",
        *_table(
            [
                ("records", len(clips)),
                ("unique videos", len({c.clip_uri for c in clips})),
                ("caption words, mean", f"{statistics.fmean(words):.1f}" if words else "–"),
                ("caption words, median", f"{statistics.median(words):g}" if words else "–"),
                ("caption words, min / max", f"{min(words)} / {max(words)}" if words else "–"),
                ("captions over 100 words", sum(w > 100 for w in words)),
            ],
            ("measure", "value"),
        ),
        "",
        "## Subjects per caption",
        "",
        *_table(
            [(str(k) if k is not None else "undeclared", v)
             for k, v in sorted(subjects.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))],
            ("declared subjects", "captions"),
        ),  # fmt: skip
    ]
    for key in provenance_keys:
        values = Counter(str(c.provenance.get(key, "unknown")) for c in clips)
        lines += ["", f"## By {key}", "", *_table(sorted(values.items()), (key, "records"))]
    if dropped_by_reason:
        lines += [
            "",
            "## Removed by the caption judgement",
            "",
            *_table(sorted(dropped_by_reason.items(), key=lambda kv: -kv[1]), ("reason", "captions")),
        ]
    if config:
        lines += ["", "## Configuration", "", *_table(sorted((k, f"`{v}`") for k, v in config.items()), ("setting", "value"))]
    lines += [
        "",
        "## Format",
        "",
        "JSON records in the LLaVA-Video conversation layout: `id`, `video` (the clip's path "
        "relative to this folder, `videos/<clip>.mp4`), `conversations` (a human turn starting "
        "with `<image>`, the media token LLaVA-NeXT expands into the video's frames, and the "
        "caption as the gpt turn), plus `original_description` and `provenance`. "
        f"`{MANIFEST_FILE}` maps each id to its file and its object-store URI.",
        "",
        "## Training with it",
        "",
        "LLaVA-Video / LLaVA-NeXT: `--data_path <this folder>/llava_video_conversations.json "
        "--video_folder <this folder>` (the clips are in `videos/`; if only the manifest was exported, "
        "fetch each `uri` to its `video` path first).",
        "",
    ]
    return "\n".join(lines)


def release_table(judged_captions: pd.DataFrame, media_uri: str) -> pd.DataFrame:
    """The HAICTrain rows (RELEASE_COLUMNS) of the captions that passed the judgement; a clip's
    uri is its key under the media store's uri when that store is remote (s3://…), else the key
    alone: an export holds no local path (`portable_uri`)."""
    return pd.DataFrame({
        "clip_id": judged_captions["clip_id"],
        "clip_uri": [portable_uri(media_uri, key) for key in judged_captions["clip_key"]],
        "caption": judged_captions["caption"],
        "original_description": judged_captions["description"],
        "video_id": judged_captions["video_id"],
        "provider": judged_captions["provider"],
        "model": judged_captions["model"],
        "prompt_version": judged_captions["prompt_version"],
    }, columns=RELEASE_COLUMNS)


def portable_uri(store_uri: str, key: str) -> str:
    """Where a stored object is, fit for an export: its object-store URI when the store is remote
    (s3://…), else its key inside the store (an absolute local path means nothing elsewhere)."""
    return f"{store_uri.rstrip('/')}/{key}" if "://" in store_uri else key


def captioned_clips(release: pd.DataFrame, provenance: Mapping[str, Any]) -> list[CaptionedClip]:
    """The release's rows as clips; each one's provenance is its video, model and prompt, then
    `provenance` (the partition and run that made the release)."""
    return [CaptionedClip(r.clip_id, r.clip_uri, r.caption, r.original_description,
                          {"video_id": r.video_id, "model": r.model, "prompt_version": r.prompt_version, **provenance})
            for r in release.itertuples(index=False)]


def count_by_reason_class(reasons: Iterable[str]) -> dict[str, int]:
    """How many captions each kind of reason removed (reason classes, in order of first appearance)."""
    return dict(Counter(reason_class(reason) for reason in reasons))


def clip_manifest(clips: Sequence[CaptionedClip]) -> list[dict[str, str]]:
    """Per clip, in id order: its id, its file relative to the export root, and its object-store URI
    (where to fetch it from when the clips were not copied beside the records)."""
    return [{"id": c.clip_id, "video": export_video_path(c.clip_id), "uri": c.clip_uri}
            for c in sorted(clips, key=lambda c: c.clip_id)]


def hf_front_matter(pretty_name: str, split: str, parquet_file: str) -> str:
    """The dataset card's YAML header that makes the folder a Hugging Face `datasets` dataset:
    `load_dataset(<folder>)` reads `parquet_file` as `split` (the folder's other files are not data)."""
    return "\n".join(["---", f"pretty_name: {pretty_name}", "configs:", "- config_name: default", "  data_files:",
                      f"  - split: {split}", f"    path: {parquet_file}", "---", "", ""])


def release_files(release: pd.DataFrame, clips: Sequence[CaptionedClip], card: str) -> dict[str, bytes]:
    """The release's files by name: the rows as JSONL and Parquet (each with `video`, the clip's file
    relative to the release root), the LLaVA-Video conversation records, the clip manifest, and the
    dataset card as README.md (with the header that `datasets.load_dataset(<root>)` reads)."""
    release = release.assign(video=[export_video_path(c) for c in release["clip_id"]])
    parquet = io.BytesIO()
    release.to_parquet(parquet, index=False)
    return {
        "haic_train.jsonl": release.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8"),
        "haic_train.parquet": parquet.getvalue(),
        CONVERSATIONS_FILE: json.dumps(to_conversation_records(clips), indent=1, ensure_ascii=False).encode("utf-8"),
        MANIFEST_FILE: "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in clip_manifest(clips)).encode(),
        "README.md": (hf_front_matter("HAICTrain", "train", "haic_train.parquet") + card).encode("utf-8"),
    }
