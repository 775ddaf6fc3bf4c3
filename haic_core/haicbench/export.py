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
    """The task's README in lmms-eval's conventions (Paper, Citation, Groups and Tasks, Checklist, as the
    tasks in lmms_eval/tasks/ have them), with how to run it on a local model and on an API model."""
    return "\n".join([
        "# HAICBench",
        "",
        "### Paper",
        "",
        "Title: `HAIC: Improving Human Action Understanding and Generation with Better Captions for Multi-modal "
        "Large Language Models` (ACL 2025)",
        "",
        "Abstract: https://aclanthology.org/2025.acl-long.501/ (arXiv: https://arxiv.org/abs/2502.20811)",
        "",
        "HAICBench measures how well a multi-modal model understands human actions and interactions in short "
        "video clips: multiple-choice questions in five categories (action details, action sequence, "
        "interaction, count, attribute), generated from human-written captions, checked by two annotators "
        "and corrected where wrong; options shuffled, correct answers spread evenly over positions. The test "
        "split has 412 videos and 2,000 questions, 400 per category.",
        "",
        "Homepage: https://huggingface.co/datasets/KuaishouHAIC/HAIC",
        "",
        "### Citation",
        "",
        "```bibtex",
        "@inproceedings{wang-etal-2025-haic,",
        "    title = {{HAIC}: Improving Human Action Understanding and Generation with Better Captions for "
        "Multi-modal Large Language Models},",
        "    author = {Wang, Xiao and Hua, Jingyun and Lin, Weihong and Zhang, Yuanxing and Zhang, Fuzheng and "
        "Wu, Jianlong and Zhang, Di and Nie, Liqiang},",
        "    booktitle = {Proceedings of the 63rd Annual Meeting of the Association for Computational Linguistics "
        "(Volume 1: Long Papers)},",
        "    year = {2025},",
        "    pages = {10158--10181},",
        "    doi = {10.18653/v1/2025.acl-long.501}",
        "}",
        "```",
        "",
        "### Groups and Tasks",
        "",
        "#### Groups",
        "",
        "- Not part of a group yet",
        "",
        "#### Tasks",
        "",
        f"- `{task_name}`: the paper's standard protocol. The model sees the clip and the question with lettered "
        "options (A-D, or A-E for action sequence and count) and answers with a letter, greedy decoding. "
        "Metrics: accuracy (%) per category (`interaction_accuracy`, `action_details_accuracy`, "
        "`action_sequence_accuracy`, `count_accuracy`, `attribute_accuracy`) and `average_accuracy`, the mean "
        "of the five. An answer is read as a bare letter, a leading or stated letter (\"The answer is B\"), "
        "or the text of exactly one option; an unreadable answer counts as wrong.",
        "",
        "### Data",
        "",
        f"- `{data_file}` in `{task_name}.yaml` is relative to the working directory (the `datasets` library "
        "resolves `data_files` there): run from the release root (the folder that holds `lmms_eval/` and "
        "`videos/`), or edit that path.",
        f"- Each question's `video` is `videos/<clip>.mp4` relative to `$HAICBENCH_VIDEO_ROOT`, or to the working "
        "directory when it is unset. A missing clip stops the run with an error naming the clip, the question "
        f"and the path looked at. `{MANIFEST_FILE}` lists every clip with its file and where it came from.",
        "- `utils.py` needs only the Python standard library.",
        "",
        "### Run",
        "",
        "A local model:",
        "",
        "```bash",
        "cd <release root>",
        "python -m lmms_eval --model llava_vid --model_args pretrained=<model>,max_frames_num=64 \\",
        f"    --tasks {task_name} --include_path lmms_eval --batch_size 1 --log_samples --output_path ./logs",
        "```",
        "",
        "A model behind an OpenAI-compatible server (vLLM, SGLang, a provider's API), through lmms-eval's `openai` "
        "model, which sends `max_frames_num` uniformly sampled frames (read with decord) as images:",
        "",
        "```bash",
        "cd <release root>",
        f"python -m lmms_eval --model openai --model_args model_version=<served model>,base_url=http://<host>:8000/v1,"
        f"max_frames_num=64 \\",
        f"    --tasks {task_name} --include_path lmms_eval --batch_size 1 --log_samples --output_path ./logs",
        "```",
        "",
        "(`OPENAI_API_KEY` is read from the environment when `api_key` is not given.)",
        "",
        "### Checklist",
        "",
        "For adding novel benchmarks/datasets to the library:",
        "* [x] Is the task an existing benchmark in the literature?",
        "  * [x] Have you referenced the original paper that introduced the task?",
        "  * [ ] If yes, does the original paper provide a reference implementation? If so, have you checked "
        "against the reference implementation and documented how to run such a test?",
        "    (The paper publishes its prompts and results, not an evaluation harness: the prompt here is the "
        "LLaVA-1.5 multiple-choice prompt the paper names; results were not compared with the paper's.)",
        "",
        "If other tasks on this dataset are already supported:",
        "* [ ] Is the \"Main\" variant of this task clearly denoted?",
        "* [ ] Have you provided a short sentence in a README on what each new variant adds / evaluates?",
        "* [ ] Have you noted which, if any, published evaluation setups are matched by this variant?",
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
