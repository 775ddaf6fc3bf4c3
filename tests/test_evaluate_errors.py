"""`haic evaluate` against an endpoint that fails a share of its calls and answers some malformed,
driven as the operator runs it (the real command in a subprocess, the real openai SDK against a
local server speaking the wire protocol): progress while it works, the failures grouped in one
line, the share in error in the summary and the leaderboard, exit 1 above the allowed share, a
malformed reply asked once more (never twice), and the cache paying for nothing twice."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from haic_core.evaluation.models import EvalModel
from tests.helpers import REPO_ROOT, dagster_instance
from tests.llm_servers import SMALL_CLIP, Fault, FakeOpenAIServer
from tests.test_evaluation import clip_folder, small_split

KEY = "flaky-vlm__standard__f2"


def haic(home: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HAIC_", "OPENAI_", "GEMINI_"))}
    return subprocess.run([sys.executable, "-m", "haic_cli", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                          env={**clean, "HAIC_HOME": str(home), **(env or {})}, timeout=600)


def with_split(home: Path, tmp_path: Path, video) -> tuple:
    """HAIC_HOME with a 60-QA test split (as haicbench_split writes it) and a folder of its clips."""
    from haic_resources.storage.object_store import LocalObjectStore
    from haic_resources.storage.tables import TableStore

    split = small_split()
    TableStore(LocalObjectStore(home / "tables"), home / "cache" / "tables_mirror").write("haicbench_split", "all",
                                                                                          split)
    return split, clip_folder(tmp_path / "media", split["clip_id"], video(SMALL_CLIP))


def test_a_flaky_endpoint_is_reported_grouped_and_fails_the_command_above_the_allowed_share(tmp_path, video):
    home = tmp_path / "home"
    split, root = with_split(home, tmp_path, video)
    questions = split["question"].tolist()
    refused, malformed_once, malformed_twice = questions[:15], questions[15:20], questions[20:23]
    with FakeOpenAIServer("C", output_tokens=1) as server:
        for question in refused:  # a 400 is not worth retrying: one request each
            server.script_for(question, *[Fault.status_code(400)] * 3)
        for question in malformed_once:  # the retry is answered
            server.script_for(question, Fault.malformed())
        for question in malformed_twice:  # the retry is malformed too: an error, and no third request
            server.script_for(question, Fault.malformed(), Fault.malformed())
        command = ["evaluate", "--model", "flaky-vlm", "--base-url", f"{server.base_url}/v1", "--frames", "2",
                   "--video-root", str(root)]
        first = haic(home, *command)
        assert server.requests["chat.completions"] == 15 + 2 * 5 + 2 * 3 + 37
        # Run again: the 42 answered questions come from the cache; only the 18 failed calls are asked
        # (the three twice-malformed ones are answered now), and 25 % in error is within a 30 % allowance.
        second = haic(home, *command, "--max-error-share", "0.3")
        assert server.requests["chat.completions"] == 68 + 15 + 3

    assert first.returncode == 1, first.stderr
    assert first.stderr == ("haic evaluate: 30.0 % of the questions are in error, above --max-error-share 1 %: these "
                            "scores are the endpoint's, not the model's; run the same command again to ask only "
                            "the failed calls\n")
    lines = first.stdout.splitlines()
    assert lines[0] == f"eval model {KEY}: openai/flaky-vlm, protocol standard, 2 frames, questions split"
    assert re.fullmatch(rf"    eval_answers \[{KEY}\] model answers: 60/60 \(100 %\), [\d.]+/s", lines[2])
    errors = next(line for line in lines if line.startswith("errors: "))
    assert errors.startswith("errors: 18 of 60 questions in error (30.0 %): client_error 15 (e.g. 'client_error: "
                             "chat.completions: HTTP 400")
    assert ", malformed_response 3 (e.g. 'malformed_response: " in errors
    warning = next(line for line in lines if line.startswith("    warning: "))
    assert warning.startswith(f"    warning: {KEY}: 18 of 60 questions in error (30.0 %): client_error 15")
    assert warning.endswith("; above max_error_share 1 %")
    header = next(line for line in lines if "Avg." in line)
    assert header.split()[-3:] == ["Attribute", "Errors", "%"]
    ours = next(line for line in lines if f"ours ({KEY})" in line)
    assert ours.split()[-1] == "30.0"

    assert second.returncode == 0, second.stderr
    assert second.stderr == ""
    assert "errors: 15 of 60 questions in error (25.0 %): client_error 15 (e.g." in second.stdout
    assert next(line for line in second.stdout.splitlines() if f"ours ({KEY})" in line).split()[-1] == "25.0"


def test_evaluate_without_a_test_split_is_one_line_and_registers_nothing(tmp_path):
    home = tmp_path / "home"
    done = haic(home, "evaluate", "--model", "m", "--base-url", "http://127.0.0.1:9/v1")
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr == ("haic evaluate: question set 'split': there is no HAICBench test split yet; materialize "
                           "haicbench_split first, or evaluate on one annotation batch's verified QA (--qa-set "
                           "verified:BATCH). Nothing was registered.\n")
    with dagster_instance(home) as instance:
        assert instance.get_dynamic_partitions("eval_models") == []
    assert not (home / "evaluation" / "models.yaml").exists()


def test_a_run_that_fails_after_registering_takes_its_partition_and_entry_back(tmp_path, video):
    """The caption protocol needs the platform's LLM as its judge; with none configured the run
    fails, and the key this command added goes again (one registered before stays)."""
    home = tmp_path / "home"
    _, root = with_split(home, tmp_path, video)
    with FakeOpenAIServer("There is 1 subject in the video.") as server:
        kept = EvalModel(model="kept", base_url=f"{server.base_url}/v1")
        done = haic(home, "evaluate", "--model", "kept", "--base-url", kept.base_url, "--register-only")
        assert done.returncode == 0, done.stderr
        done = haic(home, "evaluate", "--model", "captioner", "--base-url", f"{server.base_url}/v1",
                    "--protocol", "caption", "--frames", "2", "--video-root", str(root))
    assert done.returncode == 1
    assert done.stderr.startswith("haic evaluate: run ") and len(done.stderr.splitlines()) == 1
    assert done.stderr.endswith("; partition 'captioner__caption__f2' removed again\n")
    assert "No LLM backend is configured" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    with dagster_instance(home) as instance:
        assert instance.get_dynamic_partitions("eval_models") == ["kept__standard__f64"]
    assert list(yaml.safe_load((home / "evaluation" / "models.yaml").read_text())) == ["kept__standard__f64"]
