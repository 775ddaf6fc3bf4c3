"""Cost and time of curating a whole source, on paper, from measured per-item costs.

Pure arithmetic: a source's size, the per-item costs our benches measured (bench/plan_inputs.json,
every figure naming the bench run it comes from), the funnel's yields and the LLM's prices give
core-hours, GPU-hours, LLM tokens and dollars (online and at the batch price), and how many
partitions and runs the source makes. No I/O; `haic plan` reads the files and prints the result.
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
