"""frame_rate_filtered: drop videos whose frame rate is too low for 1 fps keypoint motion.

The worked example of README's "Adding a stage": a complete per-item stage in one file. To add
it to the pipeline, put it in haic_assets/accumulation/ and list it in haic_assets/stages.py
(tests/test_stage_factory.py builds and runs it as it is).
"""

import pandas as pd
from dagster import Config
from pydantic import Field

from haic_core.decisions import dropped, kept
from haic_platform.stage import StageContext, StageResult, partitioned_stage


class FrameRateConfig(Config):
    min_fps: float = Field(default=15.0, description="slide shows and time-lapses below this are not action video")


@partitioned_stage("frame_rate_filtered", FrameRateConfig, ins=("videos",), group="accumulation",
                   column_docs={"video_id": "'<source>:<native id>'", "fps": "frame rate of the video stream"})
def frame_rate_filtered(stage: StageContext, config: FrameRateConfig, videos: pd.DataFrame) -> StageResult:
    """Videos whose probed frame rate is at least `min_fps`."""
    decisions = []
    for video in videos.itertuples(index=False):
        decide = kept if video.fps >= config.min_fps else dropped
        reason = f"fps={video.fps:.2f} {'>=' if decide is kept else '<'} {config.min_fps:g}"
        decisions.append(decide(video.video_id, reason, metric="fps", value=float(video.fps),
                                threshold=config.min_fps))
    table = videos[videos["fps"] >= config.min_fps].reset_index(drop=True)
    return StageResult(table, decisions, preview=["video_id", "fps"])
