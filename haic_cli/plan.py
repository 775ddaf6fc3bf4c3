"""`haic plan`: what curating a whole source costs, every line of the bill with the source of its figures.

The source's size comes from the command line (`--videos N --mean-duration S`) or from a metadata
file (`--metadata results_10M_train.csv`: rows counted, its `duration` column read as the stages
read it). The per-item costs come from bench/plan_inputs.json (bench/bench_plan_inputs.py, measured
on WebVid-shaped media; every figure says how); the GPU's from webvid_shaped_figures.json in bench
(the GPU bench on the same media; `{"bench", "run_at", "figures": {"presence_pose_gpu_s_per_clip",
"decode_cores_per_gpu": {"value", "unit", "how"}}}`) when it exists, else bench/GPU_NOTES.md's run 5. The paper gives the
yields and HAICBench's sizes; prices come from HAIC_LLM_INPUT_PRICE / HAIC_LLM_OUTPUT_PRICE /
HAIC_LLM_BATCH_DISCOUNT or the flags (default: Gemini 2.5 Pro's list price); what nobody measured
(thinking tokens, hourly rates, minutes per annotation task) is a default that says so and that
`--set NAME=VALUE` changes. partitions_per_run comes from the settings file. The arithmetic is
haic_core/plan.py.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from haic_cli.common import UserError
from haic_core.accumulation.metadata_sources import parse_duration_s
from haic_core.plan import (FIGURES, WEBVID_MEGAPIXELS, Figure, Layout, Prices, SourceSize, UnitCosts, cost_lines,
                            mean_duration_from, plan, total_usd)
from haic_resources.storage.home import env_number

BENCH = Path(__file__).resolve().parents[1] / "bench"
PLAN_INPUTS = BENCH / "plan_inputs.json"
GPU_INPUTS = BENCH / "webvid_shaped_figures.json"
GPU_FIGURES = ("presence_pose_gpu_s_per_clip", "decode_cores_per_gpu")
PAPER_KEPT_PER_VIDEO = 126_000 / 10_700_000  # HAIC paper: WebVid-10M gave 126K clips
GEMINI_25_PRO_PRICES = (1.25, 10.0)  # USD per million input / output tokens, prompts up to 200K tokens
PAPER = "HAIC paper"
GPU_RUN_5 = "bench/GPU_NOTES.md run 5 (2026-12-07, not WebVid-shaped media)"
ASSUMED = "assumed (change with --set {name}=...)"

# Figures that no bench of ours measures: the paper's, a provider's list price, or an assumption.
DEFAULTS: dict[str, tuple[float, str, str]] = {
    # The GPU's figures until webvid_shaped_figures.json (in bench, the GPU bench on WebVid-shaped media) exists:
    # bench/bench_gpu_human_filters.py end to end on one H100 with 16 cores (bench/GPU_NOTES.md, run 5).
    "presence_pose_gpu_s_per_clip": (1 / 25.5, "GPU-s per candidate clip", GPU_RUN_5 + ", 25.5 clips/s end to end "
                                     "(CPU decoding in 14 processes + YOLOX-nano + RTMPose-t, torch fp32, 240 clips)"),
    "decode_cores_per_gpu": (14, "cores per GPU", GPU_RUN_5 + ": 14 decoder processes kept one H100 at 25.5 clips/s"),
    "kept_clips_per_video": (PAPER_KEPT_PER_VIDEO, "captioned clips per video", f"{PAPER}: WebVid-10M gave 126K clips"),
    "bench_clips": (1140, "clips", f"{PAPER}: 1,140 HAICBench video-caption pairs"),
    "bench_qa": (7548, "QA", f"{PAPER}: 7,548 QA pairs"),
    "test_videos": (412, "videos", f"{PAPER}: HAICBench test split, 412 videos"),
    "test_qa": (2000, "QA", f"{PAPER}: HAICBench test split, 2,000 QA"),
    "qa_calls_per_caption": (5, "calls", f"{PAPER}: five QA categories, one prompt each"),
    "writers": (1, "per clip", f"{PAPER}: 1 writer per caption"),
    "checkers": (3, "per clip", f"{PAPER}: 3 checkers per caption"),
    "qa_verifiers": (2, "per QA", f"{PAPER}: each QA checked by 2 annotators"),
    "models_evaluated": (1, "models", ASSUMED),
    "thinking_tokens": (500, "tokens per call", "Gemini 2.5 Pro thinks before answering, billed as output; "
                                                "500 per call is issue #24's estimate, not measured: " + ASSUMED),
    "judge_output_tokens": (60, "tokens per call", "caption_judge.txt asks for a score and short reasons: " + ASSUMED),
    "eval_answer_tokens": (2, "tokens per call", "an option letter: " + ASSUMED),
    "writer_minutes": (15, "minutes per caption", ASSUMED),
    "checker_minutes": (5, "minutes per check", ASSUMED),
    "qa_verifier_minutes": (1, "minutes per QA", ASSUMED),
    "labour_usd_per_hour": (20, "USD per person-hour", ASSUMED),
    "gpu_usd_per_hour": (3.0, "USD per GPU-hour", "an H100's on-demand cloud price, about: " + ASSUMED),
    "cpu_usd_per_core_hour": (0.04, "USD per core-hour", "on-demand cloud price of a vCPU, about: " + ASSUMED),
    "storage_usd_per_gb_month": (0.023, "USD per GB-month", "S3 Standard list price (us-east-1)"),
    "months_stored": (1, "months", ASSUMED),
    "egress_usd_per_gb": (0.09, "USD per GB", "S3 data transfer out to the internet, list price (first 10 TB)"),
    "download_gbps": (1.0, "Gbit/s", ASSUMED),
}


def register(sub) -> None:
    p = sub.add_parser("plan", help="every cost of curating a whole source, each with its source",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--videos", type=int, help="number of videos in the source")
    p.add_argument("--mean-duration", type=float, help="mean video duration in seconds")
    p.add_argument("--metadata", type=Path,
                   help="a metadata file (CSV, Parquet, JSONL) to count and read durations from")
    p.add_argument("--duration-column", default="duration")
    p.add_argument("--width", type=int, help="frame width (default: WebVid previews, 596)")
    p.add_argument("--height", type=int, help="frame height (default: 336)")
    p.add_argument("--kept-per-video", type=float, help="captioned clips per source video "
                                                        "(default: the paper's WebVid-10M yield, 126K / 10.7M)")
    p.add_argument("--gpu-s-per-clip", type=float, help="presence + pose GPU-seconds per clip, if measured elsewhere")
    p.add_argument("--videos-per-partition", type=int, default=10_000)
    p.add_argument("--input-price", type=float, help="USD per million input tokens")
    p.add_argument("--output-price", type=float, help="USD per million output tokens")
    p.add_argument("--batch-discount", type=float, help="price cut of batch jobs (default 0.5)")
    p.add_argument("--online", action="store_true", help="price captions, judge and QA online, not as batch jobs")
    p.add_argument("--no-judge", action="store_true", help="caption_judgement without its LLM judge")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                   help=f"change any figure of the bill ({', '.join(sorted(DEFAULTS))}, ...)")
    p.add_argument("--inputs", type=Path, default=PLAN_INPUTS, help="bench results with the per-item costs")
    p.add_argument("--gpu-inputs", type=Path, default=GPU_INPUTS,
                   help="the GPU bench's figures on WebVid-shaped media (used when the file exists)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)


def source_size(args) -> SourceSize:
    for flag, value in (("--videos", args.videos), ("--mean-duration", args.mean_duration), ("--width", args.width),
                        ("--height", args.height), ("--kept-per-video", args.kept_per_video)):
        if value is not None and value < 0:
            raise UserError(f"{flag} {value:g}: a source's size cannot be negative")
    megapixels = (args.width * args.height / 1e6) if args.width and args.height else WEBVID_MEGAPIXELS
    if args.metadata is not None:
        frame = read_metadata(args.metadata)
        if args.duration_column not in frame.columns:
            raise UserError(f"{args.metadata} has no column {args.duration_column!r} "
                            f"(columns: {', '.join(map(str, frame.columns))}); name one with --duration-column")
        durations = []
        for value in frame[args.duration_column]:
            try:
                durations.append(parse_duration_s(value))
            except (ValueError, TypeError):
                continue  # an unknown duration: the mean is over the known ones
        return SourceSize(len(frame), args.mean_duration or mean_duration_from(durations), megapixels)
    if args.videos is None or args.mean_duration is None:
        raise UserError("give --videos N --mean-duration SECONDS, or --metadata FILE")
    return SourceSize(args.videos, args.mean_duration, megapixels)


def read_metadata(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise UserError(f"no such file {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".ndjson"):
        return pd.read_json(path, lines=True)
    return pd.read_csv(path)


def bench_figures(path: Path) -> tuple[dict[str, Figure], str]:
    """A bench file's figures (each naming how it was measured and the run), and that run."""
    try:
        inputs = json.loads(path.read_text())
        run = f"{inputs.get('bench')} run {inputs.get('run_at')}"
        return {name: Figure(entry["value"], entry["unit"], f"{entry['how']} ({run})")
                for name, entry in inputs["figures"].items() if entry.get("value") is not None}, run
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"cannot read the bench inputs {path}: {exc}") from None


def prices(args) -> Prices:
    def pick(flag, env: str, default: float) -> float:
        if flag is not None:
            return flag
        try:
            return env_number(env, str(default), float)
        except ValueError as exc:
            raise UserError(str(exc)) from None

    return Prices(pick(args.input_price, "HAIC_LLM_INPUT_PRICE", GEMINI_25_PRO_PRICES[0]),
                  pick(args.output_price, "HAIC_LLM_OUTPUT_PRICE", GEMINI_25_PRO_PRICES[1]),
                  pick(args.batch_discount, "HAIC_LLM_BATCH_DISCOUNT", 0.5))


def figures(args, price: Prices) -> tuple[dict[str, Figure], list[str]]:
    """Every figure of the bill, and the bench runs they come from."""
    found = {name: Figure(value, unit, source.format(name=name)) for name, (value, unit, source) in DEFAULTS.items()}
    measured, run = bench_figures(args.inputs)
    found.update(measured)
    runs = [f"{args.inputs.name} ({run})"]
    if args.gpu_inputs.is_file():
        gpu, gpu_run = bench_figures(args.gpu_inputs)
        found.update({name: gpu[name] for name in GPU_FIGURES if name in gpu})
        runs.append(f"{args.gpu_inputs.name} ({gpu_run})")
    source = "HAIC_LLM_* or the flag, else Gemini 2.5 Pro's list price"
    found["input_usd_per_million"] = Figure(price.input_usd_per_million, "USD per M tokens", source)
    found["output_usd_per_million"] = Figure(price.output_usd_per_million, "USD per M tokens", source)
    found["batch_discount"] = Figure(price.batch_discount, "", "HAIC_LLM_BATCH_DISCOUNT or the flag (Gemini, OpenAI: 0.5)")
    if args.kept_per_video is not None:
        found["kept_clips_per_video"] = Figure(args.kept_per_video, "clips per video", "--kept-per-video")
    if args.gpu_s_per_clip is not None:
        found["presence_pose_gpu_s_per_clip"] = Figure(args.gpu_s_per_clip, "GPU-s per clip", "--gpu-s-per-clip")
    for setting in args.set:
        name, _, value = setting.partition("=")
        if name not in FIGURES:
            raise UserError(f"--set {setting}: no figure {name!r} (figures: {', '.join(FIGURES)})")
        try:
            number = float(value)
        except ValueError:
            raise UserError(f"--set {setting}: {value!r} is not a number") from None
        if not 0 <= number < float("inf"):
            raise UserError(f"--set {setting}: a figure of the bill is a finite number >= 0")
        found[name] = Figure(number, found[name].unit if name in found else "", f"--set {name}")
    missing = [name for name in FIGURES if name not in found]
    if missing:
        raise UserError(f"{args.inputs} lacks {', '.join(missing)}: run bench/bench_plan_inputs.py, or --set them")
    return found, runs


def partitions_per_run() -> int:
    from haic_platform.settings import load_settings

    try:
        return load_settings({}).platform.partitions_per_run
    except ValueError:
        return 4  # a settings file with stage sections: only the platform section matters here


def unit_costs(f: dict[str, Figure]) -> UnitCosts:
    v = {name: fig.value for name, fig in f.items()}
    return UnitCosts(
        metadata_cpu_s_per_video=v["metadata_cpu_s_per_video"], probe_cpu_s_per_video=v["probe_cpu_s_per_video"],
        scene_cpu_s_per_video_s_per_mp=v["scene_cpu_s_per_video_s_per_mp"],
        candidate_clips_per_video=v["candidate_clips_per_video"],
        presence_pose_cpu_s_per_clip=v["presence_pose_cpu_s_per_clip"],
        presence_pose_gpu_s_per_clip=v["presence_pose_gpu_s_per_clip"], kept_clips_per_video=v["kept_clips_per_video"],
        caption_input_tokens=v["caption_input_tokens"], caption_output_tokens=v["caption_output_tokens"])


def quantity(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}" if value >= 1 else f"{value:.3g}"


def table(lines) -> list[str]:
    """The bill as a table whose last column cites its sources by number, and the numbered sources."""
    numbers: dict[str, int] = {}
    for line in lines:
        for source in line.sources:
            numbers.setdefault(source, len(numbers) + 1)
    rows = [(line.section, line.item + (f" ({line.note})" if line.note else ""), quantity(line.quantity), line.unit,
             "" if line.usd is None else f"{line.usd:,.2f}", " ".join(f"[{numbers[s]}]" for s in line.sources))
            for line in lines]
    head = ("section", "item", "quantity", "unit", "USD", "sources")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(6)]
    out = []
    for n, row in enumerate([head, *rows]):
        out.append("  ".join(row[i].rjust(widths[i]) if i in (2, 4) else row[i].ljust(widths[i])
                             for i in range(6)).rstrip())
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return out + ["", "sources:"] + [f"[{n}] {source}" for source, n in numbers.items()]


def cmd_plan(args) -> int:
    size, price = source_size(args), prices(args)
    found, runs = figures(args, price)
    layout = Layout(videos_per_partition=args.videos_per_partition, partitions_per_run=partitions_per_run())
    result = plan(size, unit_costs(found), price, layout)
    lines = cost_lines(size, found, batch=not args.online, judge=not args.no_judge)
    if args.json:
        print(json.dumps({"source": size.__dict__, "plan": result.as_dict(), "prices": price.__dict__,
                          "lines": [asdict(line) for line in lines], "total_usd": total_usd(lines),
                          "inputs_from": runs}, indent=2))
        return 0
    print("\n".join([
        f"source: {size.videos:,} videos, mean {size.mean_duration_s:.1f} s ({result.video_hours:,.0f} video-hours), "
        f"{size.megapixels:.3f} MP frames",
        f"partitions: {result.partitions:,} of {layout.videos_per_partition:,} videos; runs: {result.runs:,} "
        f"({layout.partitions_per_run} partitions per run)",
        f"candidate clips (5-20 s): {result.candidate_clips:,.0f}; captioned clips: {result.captioned_clips:,.0f}",
        "", *table(lines), "",
        f"total: USD {total_usd(lines):,.2f} (the CPU-only line is an alternative to the GPU lines, not in the total)",
        f"figures: {'; '.join(runs)}",
    ]))
    return 0
