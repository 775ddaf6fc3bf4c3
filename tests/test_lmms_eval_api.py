"""HAICBench run by lmms-eval itself against an OpenAI-compatible model server, as a contributor would
run the task upstream: the release written by the platform's exporter, lmms-eval's own `openai` API
model (frames of each real clip decoded by decord, sent as image parts), a server on 127.0.0.1
speaking the chat-completions protocol, and lmms-eval's own scoring and aggregation.

lmms-eval needs PyAV < 16 and torch, so it lives in its own environment (integrations/lmms_eval);
this test runs when HAIC_LMMS_EVAL_PYTHON names that environment's python (or it is synced)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from haic_core.haicbench.export import benchmark_records, haicbench_release_files
from tests.llm_servers import FakeOpenAIServer, prompt_text_of

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
LMMS_PYTHON = os.environ.get("HAIC_LMMS_EVAL_PYTHON") or str(REPO / "integrations" / "lmms_eval" / ".venv" / "bin" / "python")

SPLIT = pd.DataFrame([
    {"qa_id": "qa_1", "video_id": "omega:juggle", "clip_id": "omega:juggle-0", "category": "count",
     "question": "How many balls does the person juggle?", "options": ["1", "2", "3", "4", "5"], "answer_index": 4},
    {"qa_id": "qa_2", "video_id": "omega:juggle", "clip_id": "omega:juggle-0", "category": "attribute",
     "question": "What colour is the person's top?", "options": ["blue", "red", "green", "white"], "answer_index": 1},
    {"qa_id": "qa_3", "video_id": "omega:hoops", "clip_id": "omega:hoops-0", "category": "interaction",
     "question": "How do the two players interact?", "options": ["one guards the other", "they hug",
                                                                  "they shake hands", "they ignore each other"],
     "answer_index": 0},
    {"qa_id": "qa_4", "video_id": "omega:hoops", "clip_id": "omega:hoops-0", "category": "action_details",
     "question": "Which hand shoots the ball?", "options": ["left", "both", "neither", "right"], "answer_index": 3},
    {"qa_id": "qa_5", "video_id": "omega:hoops", "clip_id": "omega:hoops-0", "category": "action_sequence",
     "question": "What does the player do just after dribbling?", "options": ["shoots", "sits", "waves", "falls",
                                                                              "runs off"], "answer_index": 0},
])
CLIPS = {"omega:juggle-0": "sam2_juggle_1p.mp4", "omega:hoops-0": "mmaction2_basketball_2p.mp4"}
# What the served model answers, by question: right (in three phrasings), wrong, and unreadable.
ANSWERS = {"How many balls": "E", "What colour": "The answer is B.", "How do the two": "C",
           "Which hand": "(D) right", "What does the player": "I cannot tell from the video."}
FRAMES = 4


def answer(body) -> str:
    text = prompt_text_of(body)
    return next(reply for start, reply in ANSWERS.items() if start in text)


@pytest.fixture
def release(tmp_path, video):
    root = tmp_path / "release"
    records = benchmark_records(SPLIT)
    for name, data in haicbench_release_files(records, SPLIT[["video_id"]].drop_duplicates()).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    for record in records:
        (root / record["video"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(video(CLIPS[record["clip_id"]]), root / record["video"])
    return root


def test_lmms_eval_scores_haicbench_through_its_openai_api_model(release, tmp_path):
    if not Path(LMMS_PYTHON).is_file():
        pytest.skip("lmms-eval's environment is not installed (uv sync --project integrations/lmms_eval, or set "
                    "HAIC_LMMS_EVAL_PYTHON)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "HAICBENCH_", "HF_"))}
    env.update(HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"), NO_PROXY="127.0.0.1")
    with FakeOpenAIServer(reply=answer) as server:
        model_args = (f"model_version=haic-fake-vlm,base_url={server.base_url}/v1,api_key=test-key,"
                      f"max_frames_num={FRAMES},num_concurrent=1,httpx_trust_env=False")
        run = subprocess.run([LMMS_PYTHON, "-m", "lmms_eval", "--model", "openai", "--model_args", model_args,
                              "--tasks", "haicbench", "--include_path", "lmms_eval", "--batch_size", "1",
                              "--output_path", str(tmp_path / "out"), "--log_samples"],
                             cwd=release, env=env, capture_output=True, text=True, timeout=1500)
        assert run.returncode == 0, run.stderr[-4000:]
        bodies = list(server.bodies)
    written = list((tmp_path / "out").rglob("*results.json"))
    assert written, f"lmms-eval wrote no results (it exits 0 on errors): {run.stderr[-4000:]}"
    results = json.loads(written[0].read_text())["results"]["haicbench"]
    scores = {k.split(",")[0]: v for k, v in results.items() if k.endswith(",none") and "_stderr" not in k}
    assert scores == {"count_accuracy": 100.0, "attribute_accuracy": 100.0, "interaction_accuracy": 0.0,
                      "action_details_accuracy": 100.0, "action_sequence_accuracy": 0.0, "average_accuracy": 60.0}
    # One request per question: the task's prompt and frames of the real clip, decoded by lmms-eval.
    assert len(bodies) == len(SPLIT)
    for body in bodies:
        parts = body["messages"][0]["content"]
        text = [p["text"] for p in parts if p["type"] == "text"]
        images = [p for p in parts if p["type"] == "image_url"]
        assert len(text) == 1 and text[0].endswith("Answer with the option's letter from the given choices directly.")
        assert len(images) >= FRAMES and all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in images)
