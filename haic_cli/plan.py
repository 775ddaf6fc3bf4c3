"""`haic plan`: what curating a whole source costs, from our own measured per-item costs.

The source's size comes from the command line (`--videos N --mean-duration S`) or from a metadata
file (`--metadata results_10M_train.csv`: rows counted, its `duration` column read as the stages
read it). The per-item costs come from bench/plan_inputs.json (written by
bench/bench_plan_inputs.py; every figure says how it was measured), the yield of captioned clips
per video from `--kept-per-video` (default: the paper's WebVid-10M figure, 126K clips of 10.7M
videos), prices from HAIC_LLM_INPUT_PRICE / HAIC_LLM_OUTPUT_PRICE / HAIC_LLM_BATCH_DISCOUNT or the
flags (default: Gemini 2.5 Pro's list price), partitions_per_run from the settings file.
The arithmetic is haic_core/plan.py.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from haic_core.accumulation.metadata_sources import parse_duration_s
from haic_core.plan import WEBVID_MEGAPIXELS, Layout, Prices, SourceSize, UnitCosts, mean_duration_from, plan
from haic_resources.storage.home import env_number

PLAN_INPUTS = Path(__file__).resolve().parents[2] / "bench" / "plan_inputs.json"
PAPER_KEPT_PER_VIDEO = 126_000 / 10_700_000  # HAIC paper: WebVid-10M gave 126K clips
GEMINI_25_PRO_PRICES = (1.25, 10.0)  # USD per million input / output tokens, prompts up to 200K tokens


def register(sub) -> None:
    p = sub.add_parser("plan", help="core-hours, GPU-hours, LLM tokens and dollars to curate a whole source")
    p.add_argument("--videos", type=int, help="number of videos in the source")
    p.add_argument("--mean-duration", type=float, help="mean video duration in seconds")
    p.add_argument("--metadata", type=Path,
                   help="a metadata file (CSV, Parquet, JSONL) to count and read durations from")
    p.add_argument("--duration-column", default="duration")
    p.add_argument("--width", type=int, help="frame width (default: WebVid previews, 596)")
    p.add_argument("--height", type=int, help="frame height (default: 336)")
    p.add_argument("--kept-per-video", type=float, default=PAPER_KEPT_PER_VIDEO,
                   help="captioned clips per source video (default: the paper's WebVid-10M yield, 126K / 10.7M)")
    p.add_argument("--gpu-s-per-clip", type=float, help="presence + pose GPU-seconds per clip, if measured elsewhere")
    p.add_argument("--videos-per-partition", type=int, default=10_000)
    p.add_argument("--input-price", type=float, help="USD per million input tokens")
    p.add_argument("--output-price", type=float, help="USD per million output tokens")
    p.add_argument("--batch-discount", type=float, help="price cut of batch jobs (default 0.5)")
    p.add_argument("--inputs", type=Path, default=PLAN_INPUTS, help="bench results with the per-item costs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plan)


def source_size(args) -> SourceSize:
    megapixels = (args.width * args.height / 1e6) if args.width and args.height else WEBVID_MEGAPIXELS
    if args.metadata is not None:
        frame = read_metadata(args.metadata)
        if args.duration_column not in frame.columns:
            raise SystemExit(f"haic plan: {args.metadata} has no column {args.duration_column!r} "
                             f"(columns: {', '.join(map(str, frame.columns))}); name one with --duration-column")
        durations = []
        for value in frame[args.duration_column]:
            try:
                durations.append(parse_duration_s(value))
            except (ValueError, TypeError):
                continue  # an unknown duration: the mean is over the known ones
        return SourceSize(len(frame), args.mean_duration or mean_duration_from(durations), megapixels)
    if args.videos is None or args.mean_duration is None:
        raise SystemExit("haic plan: give --videos N --mean-duration SECONDS, or --metadata FILE")
    return SourceSize(args.videos, args.mean_duration, megapixels)


def read_metadata(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise SystemExit(f"haic plan: no such file {path}")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pd.read_parquet(path)
    if suffix in (".jsonl", ".ndjson"):
        return pd.read_json(path, lines=True)
    return pd.read_csv(path)


def unit_costs(inputs: dict, args) -> UnitCosts:
    f = {name: entry["value"] for name, entry in inputs["figures"].items()}
    return UnitCosts(
        metadata_cpu_s_per_video=f["metadata_cpu_s_per_video"], probe_cpu_s_per_video=f["probe_cpu_s_per_video"],
        scene_cpu_s_per_video_s_per_mp=f["scene_cpu_s_per_video_s_per_mp"],
        candidate_clips_per_video=f["candidate_clips_per_video"],
        presence_pose_cpu_s_per_clip=f["presence_pose_cpu_s_per_clip"],
        presence_pose_gpu_s_per_clip=args.gpu_s_per_clip if args.gpu_s_per_clip is not None
        else f["presence_pose_gpu_s_per_clip"],
        kept_clips_per_video=args.kept_per_video,
        caption_input_tokens=f["caption_input_tokens"], caption_output_tokens=f["caption_output_tokens"])


def prices(args) -> Prices:
    def pick(flag, env: str, default: float) -> float:
        if flag is not None:
            return flag
        try:
            return env_number(env, str(default), float)
        except ValueError as exc:
            raise SystemExit(f"haic plan: {exc}") from None

    return Prices(pick(args.input_price, "HAIC_LLM_INPUT_PRICE", GEMINI_25_PRO_PRICES[0]),
                  pick(args.output_price, "HAIC_LLM_OUTPUT_PRICE", GEMINI_25_PRO_PRICES[1]),
                  pick(args.batch_discount, "HAIC_LLM_BATCH_DISCOUNT", 0.5))


def partitions_per_run() -> int:
    from haic_assets.platform.settings import load_settings

    try:
        return load_settings({}).platform.partitions_per_run
    except ValueError:
        return 4  # a settings file with stage sections: only the platform section matters here


def cmd_plan(args) -> int:
    try:
        inputs = json.loads(args.inputs.read_text())
    except (OSError, ValueError) as exc:
        raise SystemExit(f"haic plan: cannot read the bench inputs {args.inputs}: {exc}") from None
    size, costs, price = source_size(args), unit_costs(inputs, args), prices(args)
    layout = Layout(videos_per_partition=args.videos_per_partition, partitions_per_run=partitions_per_run())
    result = plan(size, costs, price, layout)
    if args.json:
        print(json.dumps({"source": size.__dict__, "plan": result.as_dict(), "prices": price.__dict__,
                          "inputs_from": f"{inputs.get('bench')} run {inputs.get('run_at')}"}, indent=2))
        return 0
    gpu = ("not measured (give --gpu-s-per-clip)" if result.gpu_hours_people is None
           else f"{result.gpu_hours_people:,.0f}")
    lines = [
        f"source: {size.videos:,} videos, mean {size.mean_duration_s:.1f} s ({result.video_hours:,.0f} video-hours), "
        f"{size.megapixels:.3f} MP frames",
        f"partitions: {result.partitions:,} of {layout.videos_per_partition:,} videos; runs: {result.runs:,} "
        f"({layout.partitions_per_run} partitions per run)",
        f"candidate clips (5-20 s): {result.candidate_clips:,.0f}; captioned clips: {result.captioned_clips:,.0f}",
        f"CPU core-hours, metadata + probe + scene split: {result.cpu_core_hours_decode:,.0f}",
        f"CPU core-hours, presence + pose on CPU: {result.cpu_core_hours_people_on_cpu:,.0f}",
        f"GPU-hours, presence + pose: {gpu}",
        f"LLM tokens: {result.llm_input_tokens:,.0f} input + {result.llm_output_tokens:,.0f} output",
        f"LLM dollars: {result.llm_usd_online:,.2f} online, {result.llm_usd_batch:,.2f} batch "
        f"(USD {price.input_usd_per_million}/{price.output_usd_per_million} per M tokens, "
        f"batch discount {price.batch_discount:.0%})",
        f"per-item costs: {args.inputs.name} ({inputs.get('bench')} run {inputs.get('run_at')})",
    ]
    print("\n".join(lines))
    return 0
