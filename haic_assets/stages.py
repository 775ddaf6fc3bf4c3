"""Every stage of the platform, in pipeline order (haic_core/pipeline_order.py): the one list that the
definitions, the code versions, the funnel's stage order, the settings file's sections and the tests all
read."""

from haic_assets.accumulation.action_filtered import action_filtered
from haic_assets.accumulation.clips import clips
from haic_assets.accumulation.human_presence import human_presence
from haic_assets.accumulation.metadata_filtered import metadata_filtered
from haic_assets.accumulation.pose_tracks import pose_tracks
from haic_assets.accumulation.raw_metadata import raw_metadata
from haic_assets.accumulation.videos import videos
from haic_assets.curation.threshold_whatif import threshold_whatif
from haic_assets.evaluation.eval_answers import eval_answers
from haic_assets.evaluation.eval_leaderboard import eval_leaderboard
from haic_assets.haic_train.caption_judgement import caption_judgement
from haic_assets.haic_train.captions import captions
from haic_assets.haic_train.gathered_release import haic_train_release
from haic_assets.haic_train.haic_train_release import haic_train
from haic_assets.haicbench.annotation_tasks import annotation_tasks
from haic_assets.haicbench.bench_captions import bench_captions
from haic_assets.haicbench.content_leakage import haicbench_content_leakage
from haic_assets.haicbench.dataset_statistics import dataset_statistics
from haic_assets.haicbench.haicbench_split import haicbench_split
from haic_assets.haicbench.qa_pairs import qa_pairs
from haic_assets.haicbench.qa_verified import qa_verified
from haic_core.pipeline_order import PIPELINE_STAGES
from haic_platform.stage import StageSpec

_BY_NAME = {s.name: s for s in (
    raw_metadata, metadata_filtered, videos, clips, human_presence, pose_tracks, action_filtered, captions,
    caption_judgement, haic_train, haic_train_release, annotation_tasks, bench_captions, qa_pairs, qa_verified,
    haicbench_content_leakage, haicbench_split, dataset_statistics, eval_answers, eval_leaderboard, threshold_whatif)}
if set(_BY_NAME) != set(PIPELINE_STAGES):
    raise RuntimeError(f"stages without a place in PIPELINE_STAGES or the reverse: {set(_BY_NAME) ^ set(PIPELINE_STAGES)}")
STAGES: tuple[StageSpec, ...] = tuple(_BY_NAME[name] for name in PIPELINE_STAGES)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def stage_named(name: str) -> StageSpec:
    return next(s for s in STAGES if s.name == name)


def settings_fields() -> dict[str, set[str]]:
    """section -> the settings it may hold, for checking the settings file: a stage's Config fields,
    where a setting shared by two stages (`settings_from`) lives in the one section it is read from."""
    fields = {s.name: set(s.config_class.model_fields) - set(s.settings_from) for s in STAGES}
    for s in STAGES:
        for name, section in s.settings_from.items():
            fields[section].add(name)
    return fields
