"""`haic plan`: the arithmetic on round figures, and the command as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from haic_core.plan import Layout, Prices, SourceSize, UnitCosts, plan
from tests.helpers import REPO_ROOT
from tests.timing import limit

COSTS = UnitCosts(metadata_cpu_s_per_video=0.001, probe_cpu_s_per_video=0.02, scene_cpu_s_per_video_s_per_mp=0.1,
                  candidate_clips_per_video=1.5, presence_pose_cpu_s_per_clip=2.0, presence_pose_gpu_s_per_clip=0.2,
                  kept_clips_per_video=0.01, caption_input_tokens=4000, caption_output_tokens=300)


def test_a_million_videos_on_paper():
    result = plan(SourceSize(1_000_000, 20.0, megapixels=0.5), COSTS, Prices(1.25, 10.0, 0.5),
                  Layout(videos_per_partition=10_000, partitions_per_run=4))
    assert (result.partitions, result.runs) == (100, 25)
    assert result.video_hours == pytest.approx(1_000_000 * 20 / 3600)
    # per video 0.001 + 0.02 + 20 s x 0.5 MP x 0.1 = 1.021 CPU-s
    assert result.cpu_core_hours_decode == pytest.approx(1_021_000 / 3600)
    assert result.cpu_core_hours_people_on_cpu == pytest.approx(1_500_000 * 2.0 / 3600)
    assert result.gpu_hours_people == pytest.approx(1_500_000 * 0.2 / 3600)
    assert (result.llm_input_tokens, result.llm_output_tokens) == pytest.approx((40_000_000, 3_000_000))
    assert result.llm_usd_online == pytest.approx(40 * 1.25 + 3 * 10.0)  # 80 USD
    assert result.llm_usd_batch == pytest.approx(40.0)
    assert plan(SourceSize(1, 1.0), COSTS, Prices(1, 1)).runs == 1


def haic_plan(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os

    env = {**os.environ, **(env_extra or {})}
    for name in ("HAIC_LLM_INPUT_PRICE", "HAIC_LLM_OUTPUT_PRICE", "HAIC_LLM_BATCH_DISCOUNT"):
        env.pop(name, None)
    return subprocess.run([sys.executable, "-m", "haic_cli", "plan", *args], cwd=REPO_ROOT,
                          capture_output=True, text=True, env=env, timeout=limit(120))


@pytest.fixture
def inputs(tmp_path):
    figures = {name: {"value": value, "unit": "", "how": "test"} for name, value in {
        "metadata_cpu_s_per_video": 0.001, "probe_cpu_s_per_video": 0.02, "scene_cpu_s_per_video_s_per_mp": 0.1,
        "candidate_clips_per_video": 1.5, "presence_pose_cpu_s_per_clip": 2.0, "presence_pose_gpu_s_per_clip": None,
        "caption_input_tokens": 4000, "caption_output_tokens": 300}.items()}
    path = tmp_path / "plan_inputs.json"
    path.write_text(json.dumps({"bench": "bench/bench_plan_inputs.py", "run_at": "2026-12-03 18:00 UTC",
                                "figures": figures}))
    return path


@pytest.mark.slow
def test_haic_plan_reads_a_webvid_metadata_file_and_prints_the_plan(tmp_path, inputs, monkeypatch):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    csv = tmp_path / "results_2M_val.csv"
    csv.write_text("videoid,contentUrl,duration,page_dir,name\n"
                   "1,u1,PT00H00M10S,d,A man runs\n2,u2,PT00H00M30S,d,A woman waves\n3,u3,garbage,d,Kids play\n")
    done = haic_plan("--metadata", str(csv), "--inputs", str(inputs), "--kept-per-video", "0.5", "--json",
                     "--width", "1000", "--height", "500")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["source"] == {"videos": 3, "mean_duration_s": 20.0, "megapixels": 0.5}
    assert report["plan"]["partitions"] == 1 and report["plan"]["runs"] == 1
    assert report["plan"]["captioned_clips"] == 1.5
    assert report["plan"]["gpu_hours_people"] is None
    assert report["plan"]["llm_usd_online"] == pytest.approx(1.5 * (4000 * 1.25 + 300 * 10) / 1e6)
    assert report["inputs_from"] == "bench/bench_plan_inputs.py run 2026-12-03 18:00 UTC"


@pytest.mark.slow
def test_haic_plan_for_webvid_10m_prints_every_figure_with_its_source(tmp_path, inputs, monkeypatch):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    done = haic_plan("--videos", "10700000", "--mean-duration", "18", "--inputs", str(inputs),
                     "--gpu-s-per-clip", "0.2", "--input-price", "2", "--output-price", "10", "--batch-discount", "0.5")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "partitions: 1,070 of 10,000 videos; runs: 268 (4 partitions per run)"
    assert lines[2] == "candidate clips (5-20 s): 16,050,000; captioned clips: 126,000"
    assert lines[5] == "GPU-hours, presence + pose: 892"
    assert lines[7].startswith("LLM dollars: 1,386.00 online, 693.00 batch")
    assert lines[-1] == "per-item costs: plan_inputs.json (bench/bench_plan_inputs.py run 2026-12-03 18:00 UTC)"



def test_haic_plan_without_a_size_says_what_it_needs(inputs):
    from haic_cli.main import main

    with pytest.raises(SystemExit, match="give --videos N --mean-duration SECONDS, or --metadata FILE"):
        main(["plan", "--videos", "10", "--inputs", str(inputs)])


def test_a_price_setting_that_is_no_number_is_named(inputs, monkeypatch):
    from haic_cli.main import main

    monkeypatch.setenv("HAIC_LLM_OUTPUT_PRICE", "ten")
    with pytest.raises(SystemExit, match=r"^haic plan: HAIC_LLM_OUTPUT_PRICE='ten' is not a number$"):
        main(["plan", "--videos", "10", "--mean-duration", "10", "--inputs", str(inputs)])


def test_the_checked_in_plan_inputs_name_how_every_figure_was_measured():
    inputs = json.loads((REPO_ROOT / "bench" / "plan_inputs.json").read_text())
    assert inputs["bench"] == "bench/bench_plan_inputs.py" and inputs["run_at"]
    for name, entry in inputs["figures"].items():
        assert entry["how"] and entry["unit"], name
        assert entry["value"] is None or entry["value"] > 0, name
