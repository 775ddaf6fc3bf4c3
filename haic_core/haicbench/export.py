"""Exports of the HAICBench test split: JSONL, Parquet, and an lmms-eval task folder.

`benchmark_records` is pure; the `export_*` functions write only into the directory they are
given and return the paths they wrote.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from haic_core.haicbench.qa_parsing import CATEGORIES, OPTION_LETTERS

TASK_NAME = "haicbench"
SPLIT_NAME = "test"
UTILS_SOURCE = Path(__file__).with_name("lmms_eval_utils.py")
BENCHMARK_FIELDS = ("qa_id", "video_id", "clip_id", "category", "question", "options",
                    "answer_index", "answer", "video")


def default_video_path(clip_id: str) -> str:
    """Relative path of a clip's video; lmms-eval resolves it against HAICBENCH_VIDEO_ROOT."""
    return f"videos/{clip_id}.mp4"


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


def export_split_jsonl(records: list[dict[str, Any]], directory: Path, name: str = "haicbench_test.jsonl") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path


def export_split_parquet(records: list[dict[str, Any]], directory: Path, name: str = "haicbench_test.parquet") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    schema = pa.schema([
        ("qa_id", pa.string()), ("video_id", pa.string()), ("clip_id", pa.string()), ("category", pa.string()),
        ("question", pa.string()), ("options", pa.list_(pa.string())), ("answer_index", pa.int32()),
        ("answer", pa.string()), ("video", pa.string()),
    ])
    pq.write_table(pa.Table.from_pylist(records, schema=schema), path)
    return path


class FunctionRef(str):
    """A `!function module.name` reference in an lmms-eval yaml."""


def lmms_eval_task_config(data_file: str, task_name: str = TASK_NAME) -> dict[str, Any]:
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


def export_lmms_eval_task(
    records: list[dict[str, Any]],
    directory: Path,
    task_name: str = TASK_NAME,
) -> dict[str, Path]:
    """Write an lmms-eval task folder: the split as Parquet (and JSONL), `<task>.yaml`, and
    `utils.py`. The yaml names the Parquet file by absolute path, because `datasets` resolves
    data_files against the working directory, not the yaml's folder."""
    directory.mkdir(parents=True, exist_ok=True)
    parquet_path = export_split_parquet(records, directory)
    jsonl_path = export_split_jsonl(records, directory)
    yaml_path = directory / f"{task_name}.yaml"
    config = lmms_eval_task_config(str(parquet_path.resolve()), task_name)
    yaml_path.write_text(yaml.dump(config, Dumper=_TaskDumper, sort_keys=False, allow_unicode=True), encoding="utf-8")
    utils_path = directory / "utils.py"
    utils_path.write_text(UTILS_SOURCE.read_text(encoding="utf-8"), encoding="utf-8")
    return {"yaml": yaml_path, "utils": utils_path, "parquet": parquet_path, "jsonl": jsonl_path}
