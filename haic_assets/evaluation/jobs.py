"""The evaluation jobs: one model (an eval_models partition) answers the benchmark; the
leaderboard over all models is its own job, because a job cannot mix partitioned and
unpartitioned assets."""

from dagster import AssetSelection, define_asset_job

EVALUATE_MODEL_JOB = "evaluate_model"
EVAL_LEADERBOARD_JOB = "eval_leaderboard_job"


def build_evaluation_jobs() -> list:
    return [
        define_asset_job(name=EVALUATE_MODEL_JOB, selection=AssetSelection.assets("eval_answers", "eval_results"),
                         description="One evaluated model (an eval_models partition) answers every HAICBench "
                                     "question of its question set under its protocol (haic evaluate)."),
        define_asset_job(name=EVAL_LEADERBOARD_JOB, selection=AssetSelection.assets("eval_leaderboard"),
                         description="The leaderboard of every evaluated model in the paper's layout."),
    ]
