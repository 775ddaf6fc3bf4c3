"""HAICTrain through Dagster: the real google-genai client against a local server that speaks
Gemini's REST API on 127.0.0.1 (the remote API cannot be reached here)."""

from __future__ import annotations

import json

import pytest
from dagster import AssetKey

from haic_assets.definitions import build_definitions
from haic_assets.platform.jobs import shard_run_selection
from haic_resources.llm.resource import NOT_CONFIGURED
from tests.helpers import run_sample, SAMPLE_PARTITION, dagster_instance, land_sample, ledger, run_partition, without_llm
from tests.llm_servers import FakeGeminiServer, Fault

pytestmark = pytest.mark.slow

SECRET = "AIzaTEST-pipeline-secret-0123456789"
LLM_ASSETS = [AssetKey("captions"), AssetKey("caption_judgement"), AssetKey("haic_train")]
# A caption in the paper's standardized format (Figure 1 style), returned by the local server.
GOOD_CAPTION = (
    "There is 1 subject in the video.\n\n"
    "The first subject is a young man with short black hair, wearing a grey t-shirt, dark track pants and white "
    "sneakers, standing on a grassy lawn in front of trees. He keeps a white football in the air with his feet, "
    "first tapping it with his right foot and then with his left foot, while his arms stay out to the sides for "
    "balance. Next he lifts the ball onto his thigh, lets it drop and kicks it up again, watching it closely. "
    "Finally he traps the ball under his right foot and stands still."
)


def all_event_text(instance) -> str:
    """Every event of every run, materializations and their metadata included."""
    logs = []
    for run in instance.get_runs():
        logs += [str(e) for e in instance.all_logs(run.run_id)]
    return "\n".join(logs)


@pytest.fixture
def accumulated(tmp_path, monkeypatch):
    """The sample partition through the accumulation stage (no LLM configured yet)."""
    home = tmp_path / "home"
    return home, run_sample(home, monkeypatch)


def test_without_a_backend_captions_are_defined_left_out_of_shard_runs_and_fail_fast(accumulated):
    home, defs = accumulated
    job = defs.resolve_job_def("curate_source")
    assert "captions" in {n.name for n in job.nodes_in_topological_order}  # the UI can launch it anywhere
    assert "HAIC_LLM_PROVIDER, GEMINI_API_KEY, OPENAI_API_KEY / OPENAI_BASE_URL" in job.description
    shard_run = shard_run_selection(defs.resolve_asset_graph(), llm_configured=False)
    assert AssetKey("captions") not in shard_run and AssetKey("action_filtered") in shard_run
    with dagster_instance(home) as instance:
        result = job.execute_in_process(partition_key=SAMPLE_PARTITION, instance=instance, raise_on_error=False,
                                        asset_selection=[AssetKey("captions")])
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == "captions"
    assert NOT_CONFIGURED in str(failure.step_failure_data.error)


def test_captions_are_generated_judged_exported_and_never_paid_twice(accumulated, monkeypatch, capfd):
    home, _ = accumulated
    with FakeGeminiServer(GOOD_CAPTION) as server:
        monkeypatch.setenv("GEMINI_API_KEY", SECRET)
        monkeypatch.setenv("GEMINI_BASE_URL", server.base_url)
        monkeypatch.setenv("HAIC_LLM_MAX_ATTEMPTS", "4")
        defs = build_definitions()
        job = defs.resolve_job_def("curate_source")
        assert "captions" in {n.name for n in job.nodes_in_topological_order}
        server.script(Fault.status_code(429, retry_after="0"), Fault.status_code(503))
        with dagster_instance(home) as instance:
            first = run_partition(defs, instance, SAMPLE_PARTITION, selection=LLM_ASSETS)
            assert first.success
            sent = server.total_requests
            assert sent == 3  # one clip: two injected failures, then the answer
            meta = instance.get_latest_materialization_event(AssetKey("captions")).asset_materialization.metadata
            assert meta["retries"].value == 2 and meta["requests_sent"].value == 3

            second = run_partition(defs, instance, SAMPLE_PARTITION, selection=LLM_ASSETS)
            assert second.success
            assert server.total_requests == sent  # the server's own count: nothing new was sent
            meta = instance.get_latest_materialization_event(AssetKey("captions")).asset_materialization.metadata
            assert meta["cache_hits"].value == 1 and meta["requests_sent"].value == 0
            events = all_event_text(instance)

    book = ledger(home)
    judged = book[book["stage"] == "caption_judgement"]
    assert judged["verdict"].tolist() == ["kept"]
    export = home / "exports" / "haic_train" / SAMPLE_PARTITION
    rows = [json.loads(line) for line in (export / "haic_train.jsonl").read_text().splitlines()]
    assert [r["caption"] for r in rows] == [GOOD_CAPTION]
    assert rows[0]["clip_id"].startswith("webvid_sample:1001-")
    conversations = json.loads((export / "llava_video_conversations.json").read_text())
    assert conversations[0]["conversations"][1] == {"from": "gpt", "value": GOOD_CAPTION}
    assert (export / "README.md").read_text().split("---\n")[2].lstrip().startswith("# HAICTrain")
    captured = capfd.readouterr()
    assert "ASSET_MATERIALIZATION" in events and "requests_sent" in events  # the metadata is in there
    for text in (events, captured.out, captured.err):
        assert SECRET not in text
    for path in (home / "cache").rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    for path in (home / "tables").rglob("*.parquet"):
        assert SECRET.encode() not in path.read_bytes(), path
