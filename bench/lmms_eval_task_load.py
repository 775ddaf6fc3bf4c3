"""Loads the HAICBench release's lmms-eval task with lmms-eval's own task machinery.

lmms-eval (0.7.3 on PyPI) pulls in torch, transformers and the CUDA wheels, far too much for the
test extra, so this check runs against an lmms-eval installed in a throwaway environment:

    uv venv /tmp/lmms && uv pip install --python /tmp/lmms/bin/python lmms-eval==0.7.3
    .venv/bin/python bench/lmms_eval_task_load.py --lmms-python /tmp/lmms/bin/python

It writes a small release (two questions, the sample juggling clip as both clips) with the
platform's exporter, then, from the release root as the task's README says, runs in that
environment: `TaskManager(include_path="lmms_eval")`, `get_task_dict(["haicbench"])`, and on the
first question the task's doc_to_text, doc_to_visual, doc_to_target, process_results and the
count aggregation. Prints what lmms-eval returned and how long each part took; exits non-zero
when anything differs from what the release says.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHECK = r'''
import json, time
started = time.perf_counter()
from lmms_eval.tasks import TaskManager, get_task_dict
manager = TaskManager(include_path="lmms_eval")
indexed = time.perf_counter()
task = get_task_dict(["haicbench"], manager)["haicbench"]
docs = list(task.test_docs())
doc = docs[0]
scored = task.process_results(doc, ["(E)"])
out = {
    "listed": "haicbench" in manager.all_tasks, "docs": [d["qa_id"] for d in docs],
    "text": task.doc_to_text(doc), "visual": task.doc_to_visual(doc), "target": task.doc_to_target(doc),
    "count_score": scored["count_accuracy"]["score"],
    "count_aggregate": task.aggregation()["count_accuracy"]([scored["count_accuracy"]]),
    "index_s": round(indexed - started, 1), "load_s": round(time.perf_counter() - indexed, 1),
}
print("RESULT " + json.dumps(out))
'''


def write_release(root: Path, clip: Path) -> None:
    import pandas as pd

    from haic_core.haicbench.export import benchmark_records, haicbench_release_files

    split = pd.DataFrame([
        {"qa_id": "qa_1", "video_id": "omega:v1", "clip_id": "omega:v1-0", "category": "count",
         "question": "How many times does he kick the ball?", "options": ["1", "2", "3", "4", "5"], "answer_index": 4},
        {"qa_id": "qa_2", "video_id": "omega:v2", "clip_id": "omega:v2-0", "category": "attribute",
         "question": "What does he wear?", "options": ["a suit", "a T-shirt", "a coat", "a dress"], "answer_index": 1},
    ])
    records = benchmark_records(split)
    for name, data in haicbench_release_files(records, pd.DataFrame({"video_id": ["omega:v1", "omega:v2"]})).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    for record in records:
        (root / record["video"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(clip, root / record["video"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lmms-python", required=True, help="python of an environment with lmms-eval installed")
    parser.add_argument("--clip", default=str(REPO.parent / "shared" / "media" / "videos" / "sam2_juggle_1p.mp4"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "release"
        write_release(root, Path(args.clip))
        env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(Path(tmp) / "hf")}
        env.pop("HAICBENCH_VIDEO_ROOT", None)
        started = time.perf_counter()
        run = subprocess.run([args.lmms_python, "-c", CHECK], cwd=root, env=env, capture_output=True, text=True,
                             timeout=1200)
        wall = time.perf_counter() - started
        lines = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
        if run.returncode != 0 or not lines:
            print(run.stderr[-4000:], file=sys.stderr)
            return 1
        result = json.loads(lines[-1].removeprefix("RESULT "))
        expected_visual = [str(root / "videos" / Path(p).name) for p in result["visual"]]
        problems = [name for name, ok in [
            ("task listed", result["listed"]), ("docs", result["docs"] == ["qa_1", "qa_2"]),
            ("text", result["text"].startswith("How many times does he kick the ball?\nA. 1")),
            ("visual", result["visual"] == expected_visual and Path(result["visual"][0]).is_file()),
            ("target", result["target"] == "E"), ("score", result["count_score"] == 1.0),
            ("aggregate", result["count_aggregate"] == 100.0 or result["count_aggregate"] == 1.0)] if not ok]
    print(json.dumps({**result, "wall_s": round(wall, 1), "problems": problems}, indent=1))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
