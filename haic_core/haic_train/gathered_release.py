"""One HAICTrain release from many partitions: what people train on whole.

Each partition's `haic_train` export is its own folder; LLaVA-NeXT takes one `--video_folder` and
one `--data_path`. A gathered release is one folder:

    videos/<clip file>.mp4            every clip, one root (names are unique by clip id)
    llava_video_conversations.json    the LLaVA-Video records, `video` = videos/<clip file>.mp4
    haic_train_data.yaml              LLaVA-NeXT's --data_path yaml (datasets: json_path, sampling_strategy)
    haic_train.parquet, .jsonl        the rows (clip, caption, provenance, `video`), no local path
    clips_manifest.jsonl              each clip's file and where it came from (object-store URI or media key)
    README.md                         the card, with the header `datasets.load_dataset(<folder>)` reads

LLaVA-NeXT's loader (llava/train/train.py, LazySupervisedDataset) opens each yaml `json_path` as
written, i.e. relative to the directory training runs from, and each record's video at
os.path.join(--video_folder, record["video"]); a video it cannot read is skipped silently (it
moves on to the next sample). Hence: relative paths throughout, run from the release root (or
give absolute paths on the command line), and every video checked before release.
Pure: rows in, bytes out.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import yaml

from haic_core.haic_train.export import (CONVERSATIONS_FILE, MANIFEST_FILE, CaptionedClip, dataset_card_markdown,
                                         export_video_path, hf_front_matter, portable_uri, to_conversation_records)

DATA_YAML = "haic_train_data.yaml"
GATHERED_COLUMNS = ["clip_id", "video", "caption", "original_description", "video_id", "source_partition",
                    "provider", "model", "prompt_version", "clip_source"]


def gathered_table(per_partition: Mapping[str, pd.DataFrame], clip_sources: Mapping[str, str]) -> pd.DataFrame:
    """The rows of every partition's HAICTrain table (clip_id, caption, original_description, video_id,
    provider, model, prompt_version), one per clip, in clip-id order, with the clip's file in the
    release and where it came from. A clip id in two partitions is an error naming both."""
    frames, seen = [], {}
    for partition, table in per_partition.items():
        for clip_id in table["clip_id"]:
            if clip_id in seen:
                raise ValueError(f"clip {clip_id} is in partitions {seen[clip_id]} and {partition}")
            seen[clip_id] = partition
        frames.append(table.assign(source_partition=partition))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=GATHERED_COLUMNS)
    rows = rows.assign(video=[export_video_path(c) for c in rows["clip_id"]],
                       clip_source=[clip_sources.get(c) for c in rows["clip_id"]])
    return rows[GATHERED_COLUMNS].sort_values("clip_id", kind="stable").reset_index(drop=True)


def data_yaml(json_path: str = CONVERSATIONS_FILE, sampling_strategy: str = "all") -> str:
    """LLaVA-NeXT's --data_path yaml for the release: one dataset, its records file relative to the root."""
    return yaml.safe_dump({"datasets": [{"json_path": json_path, "sampling_strategy": sampling_strategy}]},
                          sort_keys=False)


def training_note(name: str) -> str:
    return "\n".join([
        "## Training with LLaVA-NeXT",
        "",
        "From this folder (LLaVA-NeXT opens the yaml's `json_path` relative to where it runs, and each",
        "record's video at `--video_folder` joined with its `video`):",
        "",
        "```bash",
        f"cd {name}",
        f"torchrun ... llava/train/train_mem.py --data_path {DATA_YAML} --video_folder . ...",
        "# or, from anywhere: --data_path /abs/path/to/this/folder/llava_video_conversations.json "
        "--video_folder /abs/path/to/this/folder",
        "```",
        "",
        "Every record's video was checked to exist and decode when the release was made; LLaVA-NeXT would",
        "otherwise skip a missing video silently.",
        "",
    ])


def gathered_release_files(name: str, rows: pd.DataFrame, config: Mapping[str, Any] | None = None) -> dict[str, bytes]:
    """The release's files by path inside its folder (the videos are copied by the caller)."""
    clips = [CaptionedClip(r.clip_id, r.clip_source or "", r.caption, r.original_description,
                           {"video_id": r.video_id, "model": r.model, "prompt_version": r.prompt_version,
                            "partition": r.source_partition})
             for r in rows.itertuples(index=False)]
    card = dataset_card_markdown(clips, name=f"HAICTrain ({name})", config=config,
                                 source=", ".join(sorted({p.split("__")[0] for p in rows["source_partition"]})) or "-")
    per_partition = Counter(rows["source_partition"])
    card += "\n## Partitions\n\n| partition | records |\n|---|---|\n" + "".join(
        f"| {p} | {n} |\n" for p, n in sorted(per_partition.items())) + "\n" + training_note(name)
    parquet = io.BytesIO()
    rows.to_parquet(parquet, index=False)
    manifest = [{"id": r.clip_id, "video": r.video, "source": r.clip_source} for r in rows.itertuples(index=False)]
    return {
        CONVERSATIONS_FILE: json.dumps(to_conversation_records(clips), indent=1, ensure_ascii=False).encode("utf-8"),
        DATA_YAML: data_yaml().encode("utf-8"),
        "haic_train.parquet": parquet.getvalue(),
        "haic_train.jsonl": rows.to_json(orient="records", lines=True, force_ascii=False).encode("utf-8"),
        MANIFEST_FILE: "".join(json.dumps(m, ensure_ascii=False) + "\n" for m in manifest).encode("utf-8"),
        "README.md": (hf_front_matter(f"HAICTrain ({name})", "train", "haic_train.parquet") + card).encode("utf-8"),
    }


def llava_next_samples(data_path: str, video_folder: str, read_json) -> list[tuple[dict, str]]:
    """(record, video path) for every sample LLaVA-NeXT's LazySupervisedDataset would load from
    `data_path` (a .yaml of datasets, or one .json), by its rules: each yaml dataset's `json_path`
    (.json or .jsonl) as written, its `sampling_strategy` (all, first:N, end:N; random:N is not
    reproducible and is refused here), and each video at os.path.join(video_folder, record['video']).
    `read_json(path)` reads a file's text (the caller's I/O)."""
    if not data_path.endswith(".yaml"):
        records = json.loads(read_json(data_path))
    else:
        records = []
        for dataset in yaml.safe_load(read_json(data_path)).get("datasets"):
            path, strategy = dataset.get("json_path"), dataset.get("sampling_strategy", "all")
            text = read_json(path)
            current = ([json.loads(line) for line in text.splitlines() if line.strip()] if path.endswith(".jsonl")
                       else json.loads(text))
            if ":" in strategy:
                kind, number = strategy.split(":")
                n = -(-int(number[:-1]) * len(current) // 100) if number.endswith("%") else int(number)
                current = {"first": current[:n], "end": current[-n:]}.get(kind)
                if current is None:
                    raise ValueError(f"sampling_strategy {strategy!r} is not reproducible")
            records += current
    return [(r, os.path.join(video_folder, r["video"])) for r in records if "video" in r]
