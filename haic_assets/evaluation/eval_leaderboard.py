"""eval_leaderboard: every evaluated model's accuracy in the paper's layout, beside the paper's rows."""

import pandas as pd
from dagster import Config, MetadataValue
from pydantic import Field

from haic_core.evaluation.leaderboard_plot import plot_leaderboard
from haic_core.evaluation.results import leaderboard, leaderboard_markdown
from haic_platform.stage import StageContext, StageResult, partitioned_stage

LEADERBOARD_DOCS = {
    "model": "the evaluated model (or the paper's name for a reference row)",
    "protocol": "standard (clip + lettered question) or caption (its caption + a judge LLM)",
    "frames": "frames per clip the model was shown (empty: not given)",
    "source": "ours (its eval_model key) or paper (reference)",
    "Avg.": "accuracy over all questions, %",
    "Action Details": "accuracy on action-details questions, %",
    "Action Sequence": "accuracy on action-sequence questions, %",
    "Interaction": "accuracy on interaction questions, %",
    "Count": "accuracy on count questions, %",
    "Attribute": "accuracy on attribute questions, %",
    "Errors %": "share of questions whose call failed (counted wrong in every score)",
}


class EvalLeaderboardConfig(Config):
    with_reference: bool = Field(default=True, description="show the paper's published rows (Tables 2 and 3) "
                                                           "beside ours, marked 'paper (reference)'")


@partitioned_stage("eval_leaderboard", EvalLeaderboardConfig, partitions=None, deps=("eval_results",),
                   records_decisions=False, column_docs=LEADERBOARD_DOCS)
def eval_leaderboard(stage: StageContext, config: EvalLeaderboardConfig) -> StageResult:
    """Leaderboard of all evaluated models (Avg., Action Details, Action Sequence, Interaction, Count,
    Attribute) per protocol, with the paper's published rows as reference rows; a table and a plot."""
    results = stage.storage.tables().read_all("eval_results")
    if results.empty:
        results = pd.DataFrame(columns=["eval_model", "model", "protocol", "frames", "category", "accuracy"])
    board = leaderboard(results, with_reference=config.with_reference)
    pictures = {f"leaderboard ({protocol})": plot_leaderboard(board, protocol) for protocol in ("standard", "caption")}
    return StageResult(board, None, metadata={"leaderboard": MetadataValue.md(leaderboard_markdown(board)),
                                              "evaluated_models": int(results["eval_model"].nunique())},
                       pictures=pictures)
