"""Exports of the HAICBench test split: JSONL, Parquet, a clip manifest, a dataset card and an
lmms-eval task folder.

Everything in a release is relative to its root (the folder holding this file set): the task's
`data_files` is `lmms_eval/haicbench_test.parquet` and each question's `video` is
`videos/<clip file>.mp4`, so the folder can be copied or synced anywhere. lmms-eval resolves
`data_files` against its working directory (the `datasets` library does), hence its README: run
it from the release root, or point HAICBENCH_VIDEO_ROOT at the clips.

Pure functions: they return each file's bytes by its path inside the export folder; the caller
writes them (to a local folder or S3) and copies the clips.
"""

from __future__ import annotations

import io
import json
from importlib.resources import files
from typing import Any, Callable, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from haic_core.haic_train.export import clip_file_name, hf_front_matter
from haic_core.haicbench.qa import CATEGORIES, OPTION_LETTERS

TASK_NAME = "haicbench"
SPLIT_NAME = "test"
LMMS_EVAL_FOLDER = "lmms_eval"
SPLIT_JSONL = "haicbench_test.jsonl"
SPLIT_PARQUET = "haicbench_test.parquet"
SPLIT_VIDEOS_PARQUET = "haicbench_test_videos.parquet"
MANIFEST_FILE = "clips_manifest.jsonl"
VIDEO_FOLDER = "videos"
# Where the task's data is, relative to the release root (the folder lmms-eval runs from).
RELATIVE_DATA_FILE = f"{LMMS_EVAL_FOLDER}/{SPLIT_PARQUET}"
BENCHMARK_FIELDS = ("qa_id", "video_id", "clip_id", "category", "question", "options",
                    "answer_index", "answer", "video")


def default_video_path(clip_id: str) -> str:
    """A clip's video relative to the release root (no `:` or `/` in the file name); lmms-eval
    resolves it against HAICBENCH_VIDEO_ROOT, else its working directory."""
    return f"{VIDEO_FOLDER}/{clip_file_name(clip_id)}"


def benchmark_records(
    split_qa: pd.DataFrame,
    video_path: Callable[[str], str] | Mapping[str, str] = default_video_path,
) -> list[dict[str, Any]]:
    """One plain record per benchmark question (see BENCHMARK_FIELDS), in split order.
    `answer` is the option letter (A-D, or A-E for five-option categories)."""
    locate = video_path.__getitem__ if isinstance(video_path, Mapping) else video_path
    records = []
    for row in split_qa.to_dict("records"):
        options = [str(o) for o in row["options"]]
        answer_index = int(row["answer_index"])
        records.append({
            "qa_id": str(row["qa_id"]),
            "video_id": str(row["video_id"]),
            "clip_id": str(row["clip_id"]),
            "category": str(row["category"]),
            "question": str(row["question"]),
            "options": options,
            "answer_index": answer_index,
            "answer": OPTION_LETTERS[answer_index],
            "video": locate(str(row["clip_id"])),
        })
    return records


def split_jsonl(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")


def split_parquet(records: list[dict[str, Any]]) -> bytes:
    schema = pa.schema([
        ("qa_id", pa.string()), ("video_id", pa.string()), ("clip_id", pa.string()), ("category", pa.string()),
        ("question", pa.string()), ("options", pa.list_(pa.string())), ("answer_index", pa.int32()),
        ("answer", pa.string()), ("video", pa.string()),
    ])
    out = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(records, schema=schema), out)
    return out.getvalue()


class FunctionRef(str):
    """A `!function module.name` reference in an lmms-eval yaml."""


def lmms_eval_task_config(data_file: str = RELATIVE_DATA_FILE, task_name: str = TASK_NAME) -> dict[str, Any]:
    """The task yaml as data; `!function` references are kept as `FunctionRef` markers."""
    return {
        "task": task_name,
        "dataset_path": "parquet",
        "dataset_kwargs": {"data_files": {SPLIT_NAME: data_file}},
        "test_split": SPLIT_NAME,
        "output_type": "generate_until",
        "doc_to_visual": FunctionRef("utils.haicbench_doc_to_visual"),
        "doc_to_text": FunctionRef("utils.haicbench_doc_to_text"),
        "doc_to_target": FunctionRef("utils.haicbench_doc_to_target"),
        "process_results": FunctionRef("utils.haicbench_process_results"),
        "generation_kwargs": {"max_new_tokens": 16, "temperature": 0, "do_sample": False},
        "metric_list": [
            {"metric": f"{category}_accuracy",
             "aggregation": FunctionRef(f"utils.haicbench_aggregate_{category}"),
             "higher_is_better": True}
            for category in CATEGORIES
        ] + [{"metric": "average_accuracy", "aggregation": FunctionRef("utils.haicbench_aggregate_average"),
              "higher_is_better": True}],
        "lmms_eval_specific_kwargs": {
            "default": {"pre_prompt": "", "post_prompt": "Answer with the option's letter from the given choices directly."}
        },
        "metadata": {"version": 0.1},
    }


class _TaskDumper(yaml.SafeDumper):
    pass


_TaskDumper.add_representer(FunctionRef, lambda dumper, ref: dumper.represent_scalar("!function", str(ref)))


def lmms_eval_task_files(records: list[dict[str, Any]], data_file: str = RELATIVE_DATA_FILE,
                         task_name: str = TASK_NAME) -> dict[str, bytes]:
    """An lmms-eval task folder: the split as Parquet (and JSONL), `<task>.yaml`, `utils.py` and a
    README on running it. `data_file` is where the yaml says the Parquet file is: by default
    relative to the release root, from where lmms-eval is run."""
    config = lmms_eval_task_config(data_file, task_name)
    return {
        "README.md": lmms_eval_readme(task_name, data_file).encode("utf-8"),
        SPLIT_PARQUET: split_parquet(records),
        SPLIT_JSONL: split_jsonl(records),
        f"{task_name}.yaml": yaml.dump(config, Dumper=_TaskDumper, sort_keys=False, allow_unicode=True).encode("utf-8"),
        # lmms_eval_utils.py stands alone (standard library only), so it is the task's utils.py as is.
        "utils.py": files("haic_core.haicbench").joinpath("lmms_eval_utils.py").read_bytes(),
    }


def clip_manifest(records: list[dict[str, Any]], clip_uris: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Per clip of the split, in clip order: its id, its file relative to the release root and,
    where known, the object-store URI it was copied from (`uri`, None when unknown)."""
    uris = clip_uris or {}
    clips = sorted({(r["clip_id"], r["video"]) for r in records})
    return [{"clip_id": clip_id, "video": video, "uri": uris.get(clip_id)} for clip_id, video in clips]


def lmms_eval_readme(task_name: str = TASK_NAME, data_file: str = RELATIVE_DATA_FILE) -> str:
    return "\n".join([
        f"# {task_name}: the HAICBench test split as an lmms-eval task",
        "",
        "Standard protocol of the HAIC paper: the clip and a question with lettered options; the model "
        "answers with a letter (greedy decoding). Accuracy per category and on average (the mean of the "
        "five category accuracies).",
        "",
        "## Run",
        "",
        "From the release root (the folder that holds `lmms_eval/` and `videos/`):",
        "",
        "```bash",
        "cd <release root>",
        f"lmms-eval --model llava_vid --model_args pretrained=<model> --tasks {task_name} \\",
        "    --include_path lmms_eval --batch_size 1 --log_samples --output_path ./logs",
        "```",
        "",
        f"- `{data_file}` in `{task_name}.yaml` is relative to the working directory (the `datasets` "
        "library resolves `data_files` there), so run from the release root or edit that path.",
        f"- Each question's `video` is `videos/<clip>.mp4` relative to `$HAICBENCH_VIDEO_ROOT`, or to the "
        "working directory when it is unset. A missing clip stops the run with an error naming the clip, "
        f"the question and the path looked at. `{MANIFEST_FILE}` lists every clip with its file and, "
        "where known, the object-store URI to fetch it from.",
        "- `utils.py` needs only the Python standard library.",
        "",
    ])


def dataset_card(records: list[dict[str, Any]], n_videos: int) -> str:
    """The release's README: what it is, its size per category, answer positions, files, how to run it."""
    per_category = {c: sum(r["category"] == c for r in records) for c in CATEGORIES}
    lines = [
        "# HAICBench (test split)",
        "",
        "Multiple-choice questions about human actions and interactions in short video clips, in five "
        "categories (the HAIC paper): action details, action sequence, interaction, count, attribute. "
        "Questions come from human-written captions, were generated by an LLM, checked by two annotators "
        "and corrected where wrong; options are shuffled and correct answers spread evenly over positions.",
        "",
        "## Size",
        "",
        "| measure | value |",
        "|---|---|",
        f"| questions | {len(records)} |",
        f"| videos | {n_videos} |",
        f"| clips | {len({r['clip_id'] for r in records})} |",
        *[f"| {c.replace('_', ' ')} questions | {n} |" for c, n in per_category.items()],
        "",
        "## Load",
        "",
        "```python",
        "from datasets import load_dataset",
        f"bench = load_dataset(\"<this folder>\")[\"{SPLIT_NAME}\"]  # `video` is relative to this folder",
        "```",
        "",
        "## Fields",
        "",
        "`qa_id`, `video_id`, `clip_id`, `category`, `question`, `options` (4 or 5), `answer_index` "
        "(0-based), `answer` (the letter), `video` (the clip, relative to this folder).",
        "",
        "## Files",
        "",
        f"- `{SPLIT_JSONL}`, `{SPLIT_PARQUET}`: the questions; `{SPLIT_VIDEOS_PARQUET}`: the chosen videos.",
        f"- `{MANIFEST_FILE}`: each clip's file under `{VIDEO_FOLDER}/` and where it came from.",
        f"- `{LMMS_EVAL_FOLDER}/`: the lmms-eval task (see its README.md).",
        "",
        "## Evaluation",
        "",
        "Standard: the model sees the clip (the paper: 64 uniformly sampled frames) and the question with "
        "lettered options, and answers with a letter. Caption: the model captions the clip and a judge LLM "
        "answers from the caption alone, replying that the caption does not mention it when it cannot "
        "(counted wrong). Both are run by `haic evaluate` on the platform.",
        "",
    ]
    return "\n".join(lines)


def haicbench_release_files(records: list[dict[str, Any]], videos: pd.DataFrame,
                            lmms_eval_data_file: str = RELATIVE_DATA_FILE,
                            clip_uris: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """The whole HAICBench release by path in its folder: the split as JSONL and Parquet, its
    videos as Parquet, the clip manifest, the dataset card as README.md, and the lmms-eval task
    under lmms_eval/ (`lmms_eval_data_file`: where its yaml says lmms_eval/haicbench_test.parquet is)."""
    videos_parquet = io.BytesIO()
    videos.to_parquet(videos_parquet, index=False)
    manifest = clip_manifest(records, clip_uris)
    release = {SPLIT_JSONL: split_jsonl(records), SPLIT_PARQUET: split_parquet(records),
               SPLIT_VIDEOS_PARQUET: videos_parquet.getvalue(),
               MANIFEST_FILE: "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in manifest).encode("utf-8"),
               "README.md": (hf_front_matter("HAICBench", SPLIT_NAME, SPLIT_PARQUET)
                             + dataset_card(records, len(videos))).encode("utf-8")}
    release.update({f"{LMMS_EVAL_FOLDER}/{name}": data
                    for name, data in lmms_eval_task_files(records, lmms_eval_data_file).items()})
    return release
