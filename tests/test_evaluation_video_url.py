"""A per-model switch sends the clip itself to an OpenAI-compatible server (vLLM's standard `video_url`
part) instead of sampled frames: checked against the local fake OpenAI server through the real SDK."""

from __future__ import annotations

import base64

import pytest

from haic_core.evaluation.models import EvalModel, model_from_key
from haic_assets.definitions import build_definitions
from haic_assets.evaluation.jobs import EVALUATE_MODEL_JOB
from haic_platform.evaluation.registry import register
from tests.helpers import dagster_instance, home_without_llm
from tests.llm_servers import SMALL_CLIP, FakeOpenAIServer
from tests.test_evaluation import clip_folder, implied_accuracy, small_split


def test_a_video_url_model_gets_the_clip_itself_in_one_video_url_part(tmp_path, monkeypatch, video):
    home = home_without_llm(tmp_path, monkeypatch)
    split = small_split().head(10)
    defs = build_definitions()
    defs.resources["storage"].tables().write("haicbench_split", "all", split)
    root = clip_folder(tmp_path / "media", split["clip_id"], video(SMALL_CLIP))
    with FakeOpenAIServer("B", output_tokens=1) as server, dagster_instance(home) as instance:
        spec = EvalModel(model="llava-video", base_url=f"{server.base_url}/v1", video_input="video_url")
        key = register(home, spec, instance)
        run = defs.resolve_job_def(EVALUATE_MODEL_JOB).execute_in_process(
            partition_key=key, instance=instance, raise_on_error=False,
            run_config={"ops": {"eval_answers": {"config": {"video_root": str(root)}}}})
        assert run.success
        bodies = list(server.bodies)
    assert key == "llava-video__standard__video" and model_from_key(key) == EvalModel(
        model="llava-video", video_input="video_url")
    assert len(bodies) == len(split)
    files = {(root / "videos" / f"{c}.mp4").read_bytes(): c for c in split["clip_id"]}  # padding tells them apart
    sent = []
    for body in bodies:
        parts = body["messages"][0]["content"]
        (part,) = [p for p in parts if p["type"] != "text"]  # the video alone, no frames beside it
        assert part["type"] == "video_url"
        header, data = part["video_url"]["url"].split(",", 1)
        assert header == "data:video/mp4;base64"
        sent.append(files[base64.b64decode(data)])
    assert sorted(sent) == sorted(split["clip_id"])  # each question with its own clip
    results = run.output_for_node("eval_answers", "eval_results").set_index("category")
    for category, accuracy in implied_accuracy(split, "B").items():
        if category in results.index:
            assert results.loc[category, "accuracy"] == pytest.approx(accuracy)


def test_video_url_is_for_openai_compatible_servers_only():
    with pytest.raises(ValueError, match="Gemini always takes the video"):
        EvalModel(model="gemini-2.5-pro", provider="gemini", video_input="video_url")
    with pytest.raises(ValueError, match="video input 'mp4' is not one of"):
        EvalModel(model="m", video_input="mp4")
