"""Cost and time of curating a whole source, on paper, from measured per-item costs.

Pure arithmetic: a source's size, the per-item costs our benches measured (bench/plan_inputs.json,
every figure naming the bench run it comes from), the funnel's yields and the LLM's prices give
core-hours, GPU-hours, LLM tokens and dollars (online and at the batch price), and how many
partitions and runs the source makes (`plan`); and every line of the bill, each with the source
of its figures (`cost_lines`): downloading, storage and egress, CPU and GPU time (with the decode
cores each GPU needs), the LLM's captions, judge, QA generation and evaluation (thinking tokens
included), and HAICBench's annotation labour. No I/O; `haic plan` reads the files and prints it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any


WEBVID_MEGAPIXELS = 596 * 336 / 1e6  # WebVid-10M's preview videos


@dataclass(frozen=True)
class SourceSize:
    videos: int
    mean_duration_s: float
    megapixels: float = WEBVID_MEGAPIXELS  # frame size, for the decoding cost of the scene split

    def __post_init__(self) -> None:
        if self.videos < 0 or self.mean_duration_s < 0:
            raise ValueError("a source's size cannot be negative")


@dataclass(frozen=True)
class UnitCosts:
    """Per-item costs (seconds of one CPU core, or of one GPU) and yields."""

    metadata_cpu_s_per_video: float  # normalize + verb check
    probe_cpu_s_per_video: float  # fetch from a local mirror + probe
    scene_cpu_s_per_video_s_per_mp: float  # scene split, per second of video per megapixel
    candidate_clips_per_video: float  # 5-20 s clips the scene split makes, per video
    presence_pose_cpu_s_per_clip: float  # 16 presence frames + 1 fps pose, one candidate clip, CPU
    presence_pose_gpu_s_per_clip: float | None  # the same on a GPU; None: not measured
    kept_clips_per_video: float  # clips that reach captioning (the paper: 126K of WebVid's 10.7M)
    caption_input_tokens: float
    caption_output_tokens: float


@dataclass(frozen=True)
class Prices:
    input_usd_per_million: float
    output_usd_per_million: float
    batch_discount: float = 0.5


@dataclass(frozen=True)
class Layout:
    videos_per_partition: int = 10_000
    partitions_per_run: int = 4

    def __post_init__(self) -> None:
        if self.videos_per_partition < 1 or self.partitions_per_run < 1:
            raise ValueError("videos_per_partition and partitions_per_run must be >= 1")


@dataclass(frozen=True)
class Plan:
    videos: int
    video_hours: float
    partitions: int
    runs: int
    candidate_clips: float
    captioned_clips: float
    cpu_core_hours_decode: float  # metadata + probe + scene split
    cpu_core_hours_people_on_cpu: float  # presence + pose when no GPU is used
    gpu_hours_people: float | None  # presence + pose on GPUs (None: no measured GPU figure)
    llm_input_tokens: float
    llm_output_tokens: float
    llm_usd_online: float
    llm_usd_batch: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def plan(size: SourceSize, costs: UnitCosts, prices: Prices, layout: Layout = Layout()) -> Plan:
    videos = size.videos
    partitions = math.ceil(videos / layout.videos_per_partition)
    candidates = videos * costs.candidate_clips_per_video
    captioned = videos * costs.kept_clips_per_video
    decode_s = videos * (costs.metadata_cpu_s_per_video + costs.probe_cpu_s_per_video
                         + size.mean_duration_s * size.megapixels * costs.scene_cpu_s_per_video_s_per_mp)
    input_tokens = captioned * costs.caption_input_tokens
    output_tokens = captioned * costs.caption_output_tokens
    online = (input_tokens * prices.input_usd_per_million + output_tokens * prices.output_usd_per_million) / 1e6
    gpu = costs.presence_pose_gpu_s_per_clip
    return Plan(
        videos=videos, video_hours=videos * size.mean_duration_s / 3600, partitions=partitions,
        runs=math.ceil(partitions / layout.partitions_per_run), candidate_clips=candidates, captioned_clips=captioned,
        cpu_core_hours_decode=decode_s / 3600,
        cpu_core_hours_people_on_cpu=candidates * costs.presence_pose_cpu_s_per_clip / 3600,
        gpu_hours_people=None if gpu is None else candidates * gpu / 3600,
        llm_input_tokens=input_tokens, llm_output_tokens=output_tokens,
        llm_usd_online=online, llm_usd_batch=online * (1.0 - prices.batch_discount),
    )


def mean_duration_from(durations_s: list[float]) -> float:
    """The mean of the known durations (a metadata file's); 0 when none is known."""
    known = [d for d in durations_s if d is not None and d == d and d >= 0]
    return sum(known) / len(known) if known else 0.0


# ---- every line of the bill ----------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One input of the bill: its value, unit and where it comes from (a bench run, the paper, a
    provider's documentation, or a setting the user may change)."""

    value: float
    unit: str
    source: str


@dataclass(frozen=True)
class Line:
    section: str
    item: str
    quantity: float
    unit: str
    usd: float | None  # None: no money changes hands for it (a duration)
    sources: tuple[str, ...]  # of every figure it multiplies
    note: str = ""


# Names of the figures `cost_lines` reads (haic_cli/plan.py gathers them).
FIGURES = (
    "metadata_cpu_s_per_video", "probe_cpu_s_per_video", "scene_cpu_s_per_video_s_per_mp", "candidate_clips_per_video",
    "mean_candidate_clip_s", "source_bytes_per_video_s", "presence_pose_cpu_s_per_clip", "presence_pose_gpu_s_per_clip",
    "decode_cores_per_gpu", "kept_clips_per_video", "caption_input_tokens", "caption_output_tokens",
    "thinking_tokens", "judge_input_tokens", "judge_output_tokens", "qa_input_tokens", "qa_output_tokens",
    "qa_calls_per_caption", "eval_standard_input_tokens", "eval_caption_input_tokens", "eval_judge_input_tokens",
    "eval_answer_tokens", "bench_clips", "bench_qa", "test_videos", "test_qa", "models_evaluated", "writers",
    "checkers", "qa_verifiers", "writer_minutes", "checker_minutes", "qa_verifier_minutes", "labour_usd_per_hour",
    "input_usd_per_million", "output_usd_per_million", "batch_discount", "gpu_usd_per_hour", "cpu_usd_per_core_hour",
    "storage_usd_per_gb_month", "months_stored", "egress_usd_per_gb", "download_gbps",
)


def cost_lines(size: SourceSize, f: dict[str, Figure], *, batch: bool = True, judge: bool = True) -> list[Line]:
    """The bill of curating `size` (HAICTrain from it, and HAICBench as the paper made it), a line
    per quantity, each with the sources of the figures it multiplies. `batch`: the LLM's calls at
    the batch price (captions, judge, QA; evaluation is online). `judge`: caption_judgement's LLM judge on."""
    missing = [name for name in FIGURES if name not in f]
    if missing:
        raise ValueError(f"plan inputs lack {', '.join(missing)}")
    v = {name: fig.value for name, fig in f.items()}

    lines: list[Line] = []

    def add(section, item, quantity, unit, usd, *names, note=""):
        lines.append(Line(section, item, quantity, unit, usd, tuple(dict.fromkeys(f[n].source for n in names)), note))

    video_s = size.videos * size.mean_duration_s
    candidates = size.videos * v["candidate_clips_per_video"]
    captioned = size.videos * v["kept_clips_per_video"]
    gb = 1e9
    source_gb = video_s * v["source_bytes_per_video_s"] / gb
    clip_gb = candidates * v["mean_candidate_clip_s"] * v["source_bytes_per_video_s"] / gb
    sent_gb = captioned * v["mean_candidate_clip_s"] * v["source_bytes_per_video_s"] / gb
    storage = v["storage_usd_per_gb_month"] * v["months_stored"]
    add("data", "download the source videos", source_gb, "GB", 0.0, "source_bytes_per_video_s",
        note=f"{video_s / 3600:,.0f} video-hours")
    add("data", f"download time at {v['download_gbps']:g} Gbit/s", source_gb * 8 / v["download_gbps"] / 3600, "hours",
        None, "download_gbps", "source_bytes_per_video_s")
    add("data", "store the source videos", source_gb, "GB", source_gb * storage, "storage_usd_per_gb_month",
        "months_stored")
    add("data", "store the candidate clips", clip_gb, "GB", clip_gb * storage, "candidate_clips_per_video",
        "mean_candidate_clip_s", "storage_usd_per_gb_month")
    add("data", "egress: captioned clips sent to the LLM", sent_gb, "GB", sent_gb * v["egress_usd_per_gb"],
        "kept_clips_per_video", "egress_usd_per_gb")

    core_h = v["cpu_usd_per_core_hour"]
    decode_h = size.videos * (v["metadata_cpu_s_per_video"] + v["probe_cpu_s_per_video"]
                              + size.mean_duration_s * size.megapixels * v["scene_cpu_s_per_video_s_per_mp"]) / 3600
    gpu_h = candidates * v["presence_pose_gpu_s_per_clip"] / 3600
    add("compute", "metadata filter + probe + scene split", decode_h, "core-hours", decode_h * core_h,
        "metadata_cpu_s_per_video", "probe_cpu_s_per_video", "scene_cpu_s_per_video_s_per_mp", "cpu_usd_per_core_hour")
    add("compute", "presence + pose on GPUs", gpu_h, "GPU-hours", gpu_h * v["gpu_usd_per_hour"],
        "presence_pose_gpu_s_per_clip", "gpu_usd_per_hour", note=f"{candidates:,.0f} candidate clips")
    feed_h = gpu_h * v["decode_cores_per_gpu"]
    add("compute", f"decode cores beside the GPUs ({v['decode_cores_per_gpu']:g} per GPU)", feed_h, "core-hours",
        feed_h * core_h, "decode_cores_per_gpu", "cpu_usd_per_core_hour")
    cpu_people_h = candidates * v["presence_pose_cpu_s_per_clip"] / 3600
    add("compute (instead of GPUs)", "presence + pose on CPUs only", cpu_people_h, "core-hours",
        cpu_people_h * core_h, "presence_pose_cpu_s_per_clip", note="not in the total")

    def llm(item, calls, input_tokens, output_tokens, names, discounted):
        cut = 1.0 - v["batch_discount"] if discounted else 1.0
        thinking = calls * v["thinking_tokens"]
        add("LLM", f"{item}: input", calls * input_tokens / 1e6, "M tokens",
            calls * input_tokens * v["input_usd_per_million"] / 1e6 * cut, names[0], "input_usd_per_million")
        add("LLM", f"{item}: output", calls * output_tokens / 1e6, "M tokens",
            calls * output_tokens * v["output_usd_per_million"] / 1e6 * cut, names[1], "output_usd_per_million")
        add("LLM", f"{item}: thinking (billed as output)", thinking / 1e6, "M tokens",
            thinking * v["output_usd_per_million"] / 1e6 * cut, "thinking_tokens", "output_usd_per_million")

    mode = "batch" if batch else "online"
    llm(f"captions ({captioned:,.0f}, {mode})", captioned, v["caption_input_tokens"], v["caption_output_tokens"],
        ("caption_input_tokens", "caption_output_tokens"), batch)
    if judge:
        llm(f"caption judge ({mode})", captioned, v["judge_input_tokens"], v["judge_output_tokens"],
            ("judge_input_tokens", "judge_output_tokens"), batch)
    qa_calls = v["bench_clips"] * v["qa_calls_per_caption"]
    llm(f"QA generation ({v['bench_clips']:,.0f} captions, {mode})", qa_calls, v["qa_input_tokens"],
        v["qa_output_tokens"], ("qa_input_tokens", "qa_output_tokens"), batch)
    models = v["models_evaluated"]
    llm(f"evaluation, standard ({models:g} model(s) x {v['test_qa']:,.0f} questions, online)", models * v["test_qa"],
        v["eval_standard_input_tokens"], v["eval_answer_tokens"], ("eval_standard_input_tokens", "eval_answer_tokens"),
        False)
    llm(f"evaluation, caption ({models:g} x {v['test_videos']:,.0f} captions, online)", models * v["test_videos"],
        v["eval_caption_input_tokens"], v["caption_output_tokens"],
        ("eval_caption_input_tokens", "caption_output_tokens"), False)
    llm(f"evaluation, judge ({models:g} x {v['test_qa']:,.0f} answers from captions, online)", models * v["test_qa"],
        v["eval_judge_input_tokens"], v["eval_answer_tokens"], ("eval_judge_input_tokens", "eval_answer_tokens"),
        False)

    rate = v["labour_usd_per_hour"]
    for item, count, minutes, names in (
            ("caption writers", v["bench_clips"] * v["writers"], v["writer_minutes"], ("writers", "writer_minutes")),
            ("caption checkers", v["bench_clips"] * v["checkers"], v["checker_minutes"], ("checkers", "checker_minutes")),
            ("QA verifiers", v["bench_qa"] * v["qa_verifiers"], v["qa_verifier_minutes"],
             ("qa_verifiers", "qa_verifier_minutes"))):
        hours = count * minutes / 60
        add("annotation", f"{item} ({count:,.0f} tasks)", hours, "person-hours", hours * rate, *names,
            "labour_usd_per_hour")
    return lines


def total_usd(lines: list[Line]) -> float:
    return sum(line.usd or 0.0 for line in lines if not line.section.endswith("(instead of GPUs)"))
