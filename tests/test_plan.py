"""`haic plan`: the arithmetic on round figures, and the command as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from haic_core.plan import Figure, Layout, Prices, SourceSize, UnitCosts, cost_lines, plan
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


# What bench/bench_plan_inputs.py measures, in round figures.
BENCH = {"metadata_cpu_s_per_video": 0.001, "probe_cpu_s_per_video": 0.02, "scene_cpu_s_per_video_s_per_mp": 0.1,
         "candidate_clips_per_video": 1.5, "mean_candidate_clip_s": 10.0, "source_bytes_per_video_s": 100_000,
         "presence_pose_cpu_s_per_clip": 2.0, "caption_input_tokens": 4000, "caption_output_tokens": 300,
         "judge_input_tokens": 1000, "qa_input_tokens": 800, "qa_output_tokens": 100,
         "eval_standard_input_tokens": 3000, "eval_caption_input_tokens": 3000, "eval_judge_input_tokens": 500}


def write_inputs(path, figures: dict, bench="bench/bench_plan_inputs.py", run_at="2026-12-03 18:00 UTC"):
    path.write_text(json.dumps({"bench": bench, "run_at": run_at, "figures": {
        name: {"value": value, "unit": "u", "how": f"measured {name}"} for name, value in figures.items()}}))
    return path


@pytest.fixture
def inputs(tmp_path):
    return write_inputs(tmp_path / "plan_inputs.json", BENCH)


def plan_args(inputs, tmp_path, *more: str) -> list[str]:
    return ["--inputs", str(inputs), "--gpu-inputs", str(tmp_path / "no_gpu_figures.json"), *more]


@pytest.mark.slow
def test_haic_plan_reads_a_webvid_metadata_file_and_prints_the_plan(tmp_path, inputs, monkeypatch):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    csv = tmp_path / "results_2M_val.csv"
    csv.write_text("videoid,contentUrl,duration,page_dir,name\n"
                   "1,u1,PT00H00M10S,d,A man runs\n2,u2,PT00H00M30S,d,A woman waves\n3,u3,garbage,d,Kids play\n")
    done = haic_plan("--metadata", str(csv), *plan_args(inputs, tmp_path, "--kept-per-video", "0.5", "--json",
                                                        "--width", "1000", "--height", "500"))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["source"] == {"videos": 3, "mean_duration_s": 20.0, "megapixels": 0.5}
    assert report["plan"]["partitions"] == 1 and report["plan"]["runs"] == 1
    assert report["plan"]["captioned_clips"] == 1.5
    assert report["plan"]["gpu_hours_people"] == pytest.approx(3 * 1.5 / 25.5 / 3600)  # GPU_NOTES run 5's figure
    assert report["plan"]["llm_usd_online"] == pytest.approx(1.5 * (4000 * 1.25 + 300 * 10) / 1e6)
    assert report["inputs_from"] == ["plan_inputs.json (bench/bench_plan_inputs.py run 2026-12-03 18:00 UTC)"]
    captions = {line["item"]: line for line in report["lines"] if line["item"].startswith("captions")}
    thinking = captions["captions (2, batch): thinking (billed as output)"]
    assert thinking["quantity"] == pytest.approx(1.5 * 500 / 1e6) and thinking["usd"] == pytest.approx(1.5 * 500 * 10 / 1e6 / 2)


def bill(done) -> dict[str, list[str]]:
    """item -> [quantity, unit, USD, sources] of the printed table, and the numbered sources."""
    lines = done.stdout.splitlines()
    head = next(n for n, line in enumerate(lines) if line.startswith("section "))
    spans = [(m.start(), m.end()) for m in re.finditer(r"-+", lines[head + 1])]  # the columns, from the rule
    rows = {}
    for line in lines[head + 2:lines.index("sources:") - 1]:
        cells = [line[a:b].strip() for a, b in spans[:-1]] + [line[spans[-1][0]:].strip()]
        rows[cells[1]] = cells[2:]
    return rows


@pytest.mark.slow
def test_haic_plan_for_webvid_10m_prints_every_cost_with_its_sources(tmp_path, inputs, monkeypatch):
    monkeypatch.setenv("HAIC_HOME", str(tmp_path / "home"))
    gpu = write_inputs(tmp_path / "webvid_shaped_figures.json",
                       {"presence_pose_gpu_s_per_clip": 0.2, "decode_cores_per_gpu": 12}, bench="bench/gpu.py")
    done = haic_plan("--videos", "10700000", "--mean-duration", "18", "--inputs", str(inputs), "--gpu-inputs", str(gpu),
                     "--input-price", "2", "--output-price", "10", "--batch-discount", "0.5",
                     "--set", "gpu_usd_per_hour=2", "--set", "thinking_tokens=0")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[1] == "partitions: 1,070 of 10,000 videos; runs: 268 (4 partitions per run)"
    assert lines[2] == "candidate clips (5-20 s): 16,050,000; captioned clips: 126,000"
    rows = bill(done)
    assert rows["presence + pose on GPUs (16,050,000 candidate clips)"][:3] == ["892", "GPU-hours", "1,783.33"]
    assert rows["decode cores beside the GPUs (12 per GPU)"][:2] == ["10,700", "core-hours"]
    # 10.7 M videos x 18 s x 100 kB/s = 19,260 GB; 126,000 clips x 10 s x 100 kB/s = 126 GB out at 0.09 USD
    assert rows["download the source videos (53,500 video-hours)"][:2] == ["19,260", "GB"]
    assert rows["egress: captioned clips sent to the LLM"][:3] == ["126", "GB", "11.34"]
    assert rows["captions (126,000, batch): input"][:3] == ["504", "M tokens", "504.00"]  # at half of 2 USD per M
    assert rows["captions (126,000, batch): thinking (billed as output)"][:3] == ["0", "M tokens", "0.00"]
    assert rows["caption writers (1,140 tasks)"][:3] == ["285", "person-hours", "5,700.00"]
    assert rows["QA verifiers (15,096 tasks)"][:2] == ["252", "person-hours"]
    sources = lines[lines.index("sources:") + 1:lines.index("sources:") + 1 + len(
        {s for row in rows.values() for s in row[3].split()})]
    assert all(row[3] for row in rows.values()), "a line without its source"
    cited = {s for row in rows.values() for s in row[3].split()}
    assert {line.split("] ", 1)[0] + "]" for line in sources} == cited
    text = "\n".join(sources)
    assert "measured presence_pose_gpu_s_per_clip (bench/gpu.py run 2026-12-03 18:00 UTC)" in text
    assert "--set thinking_tokens" in text and "HAIC paper: 3 checkers per caption" in text
    assert lines[-1] == ("figures: plan_inputs.json (bench/bench_plan_inputs.py run 2026-12-03 18:00 UTC); "
                         "webvid_shaped_figures.json (bench/gpu.py run 2026-12-03 18:00 UTC)")


def test_thinking_tokens_are_billed_as_output_and_the_judge_can_be_left_out():
    from haic_cli.plan import DEFAULTS

    figures = {name: Figure(value, unit, source) for name, (value, unit, source) in DEFAULTS.items()}
    figures.update({name: Figure(value, "", "bench") for name, value in BENCH.items()})
    figures.update({"input_usd_per_million": Figure(1.25, "", "p"), "output_usd_per_million": Figure(10.0, "", "p"),
                    "batch_discount": Figure(0.5, "", "p")})
    size = SourceSize(10_700_000, 18.0)
    lines = {line.item: line for line in cost_lines(size, figures, batch=False)}
    output = lines["captions (126,000, online): output"]
    thinking = lines["captions (126,000, online): thinking (billed as output)"]
    assert output.usd == pytest.approx(126_000 * 300 * 10 / 1e6)
    assert thinking.usd == pytest.approx(126_000 * 500 * 10 / 1e6)  # more than the caption itself
    assert not any(item.startswith("caption judge") for item in
                   (line.item for line in cost_lines(size, figures, judge=False)))
    del figures["thinking_tokens"]
    with pytest.raises(ValueError, match="plan inputs lack thinking_tokens"):
        cost_lines(size, figures)


def test_haic_plan_without_a_size_says_what_it_needs(inputs, tmp_path, capsys):
    from haic_cli.main import main

    assert main(["plan", "--videos", "10", *plan_args(inputs, tmp_path)]) == 2
    assert capsys.readouterr().err == "haic plan: give --videos N --mean-duration SECONDS, or --metadata FILE\n"


@pytest.mark.parametrize("args, message", [
    (["--videos", "-5"], "--videos -5: a source's size cannot be negative"),
    (["--videos", "10", "--mean-duration", "-1"], "--mean-duration -1: a source's size cannot be negative"),
    (["--videos", "10", "--mean-duration", "9", "--set", "gpu_usd_per_hour=-2"],
     "--set gpu_usd_per_hour=-2: a figure of the bill is a finite number >= 0"),
    (["--videos", "10", "--mean-duration", "9", "--set", "gpu_hours=2"], "--set gpu_hours=2: no figure 'gpu_hours'"),
])
def test_a_size_or_figure_that_cannot_be_is_one_line(inputs, tmp_path, capsys, args, message):
    from haic_cli.main import main

    assert main(["plan", *args, *plan_args(inputs, tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"haic plan: {message}") and err.count("\n") == 1


def test_a_price_setting_that_is_no_number_is_named(inputs, tmp_path, monkeypatch, capsys):
    from haic_cli.main import main

    monkeypatch.setenv("HAIC_LLM_OUTPUT_PRICE", "ten")
    assert main(["plan", "--videos", "10", "--mean-duration", "10", *plan_args(inputs, tmp_path)]) == 2
    assert capsys.readouterr().err == "haic plan: HAIC_LLM_OUTPUT_PRICE='ten' is not a number\n"


def test_the_checked_in_plan_inputs_name_how_every_figure_was_measured():
    inputs = json.loads((REPO_ROOT / "bench" / "plan_inputs.json").read_text())
    assert inputs["bench"] == "bench/bench_plan_inputs.py" and inputs["run_at"]
    for name, entry in inputs["figures"].items():
        assert entry["how"] and entry["unit"], name
        assert entry["value"] is None or entry["value"] > 0, name
    assert set(BENCH) <= set(inputs["figures"])  # every figure the plan takes from the bench
    assert "WebVid-shaped" in inputs["figures"]["candidate_clips_per_video"]["how"]
