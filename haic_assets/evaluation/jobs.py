"""The evaluation jobs: one model (an eval_models partition) answers the benchmark; the
leaderboard over all models is its own job, because a job cannot mix partitioned and
unpartitioned assets."""

from dagster import AssetSelection, define_asset_job

EVALUATE_MODEL_JOB = "evaluate_model"
EVAL_LEADERBOARD_JOB = "eval_leaderboard_job"


def build_evaluation_jobs(provider_tags: dict[str, str] | None = None) -> list:
    """`provider_tags`: the platform provider's run tag (its judge and captioner calls), so the run
    queue's per-provider limit counts these runs too."""
    return [
        define_asset_job(name=EVALUATE_MODEL_JOB, selection=AssetSelection.assets("eval_answers", "eval_results"),
                         description="One evaluated model (an eval_models partition) answers every HAICBench "
                                     "question of its question set under its protocol (haic evaluate).",
                         tags=provider_tags or {}),
        define_asset_job(name=EVAL_LEADERBOARD_JOB, selection=AssetSelection.assets("eval_leaderboard"),
                         description="The leaderboard of every evaluated model in the paper's layout."),
    ]
