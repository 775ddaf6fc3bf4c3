"""Exports of the HAICBench test split: JSONL, Parquet, and an lmms-eval task folder.

Pure functions: they return each file's bytes by its path inside the export folder; the caller
writes them (to a local folder or S3).
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

from haic_core.haicbench.qa import CATEGORIES, OPTION_LETTERS

TASK_NAME = "haicbench"
SPLIT_NAME = "test"
LMMS_EVAL_FOLDER = "lmms_eval"
SPLIT_JSONL = "haicbench_test.jsonl"
SPLIT_PARQUET = "haicbench_test.parquet"
SPLIT_VIDEOS_PARQUET = "haicbench_test_videos.parquet"
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


def lmms_eval_task_files(records: list[dict[str, Any]], data_file: str,
                         task_name: str = TASK_NAME) -> dict[str, bytes]:
    """An lmms-eval task folder: the split as Parquet (and JSONL), `<task>.yaml` and `utils.py`.
    `data_file` is where the folder's Parquet file will be, as an absolute path or URI: the yaml
    names it so, because `datasets` resolves data_files against the working directory, not the
    yaml's folder."""
    config = lmms_eval_task_config(data_file, task_name)
    return {
        SPLIT_PARQUET: split_parquet(records),
        SPLIT_JSONL: split_jsonl(records),
        f"{task_name}.yaml": yaml.dump(config, Dumper=_TaskDumper, sort_keys=False, allow_unicode=True).encode("utf-8"),
        # lmms_eval_utils.py stands alone (standard library only), so it is the task's utils.py as is.
        "utils.py": files("haic_core.haicbench").joinpath("lmms_eval_utils.py").read_bytes(),
    }


def haicbench_release_files(records: list[dict[str, Any]], videos: pd.DataFrame,
                            lmms_eval_data_file: str) -> dict[str, bytes]:
    """The whole HAICBench release by path in its folder: the split as JSONL and Parquet, its
    videos as Parquet, and the lmms-eval task under lmms_eval/ (`lmms_eval_data_file`: where
    lmms_eval/haicbench_test.parquet will be)."""
    videos_parquet = io.BytesIO()
    videos.to_parquet(videos_parquet, index=False)
    release = {SPLIT_JSONL: split_jsonl(records), SPLIT_PARQUET: split_parquet(records),
               SPLIT_VIDEOS_PARQUET: videos_parquet.getvalue()}
    release.update({f"{LMMS_EVAL_FOLDER}/{name}": data
                    for name, data in lmms_eval_task_files(records, lmms_eval_data_file).items()})
    return release
