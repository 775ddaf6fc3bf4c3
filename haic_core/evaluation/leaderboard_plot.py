"""The leaderboard as a picture: grouped bars per model over Avg. and the five categories,
our rows solid and the paper's reference rows hatched (so they are never read as ours)."""

from __future__ import annotations

import pandas as pd

from haic_core.evaluation.results import SCORE_COLUMNS
from haic_core.haicbench.dataset_statistics import _figure, _png


def plot_leaderboard(board: pd.DataFrame, protocol: str, width_px: int = 1300, height_px: int = 560) -> bytes:
    rows = board[board["protocol"] == protocol].reset_index(drop=True)
    fig, ax = _figure(width_px, height_px)
    n = max(len(rows), 1)
    width = 0.8 / n
    for i, row in rows.iterrows():
        reference = str(row["source"]).startswith("paper")
        values = [0.0 if pd.isna(row[c]) else float(row[c]) for c in SCORE_COLUMNS]
        positions = [k + (i - (n - 1) / 2) * width for k in range(len(SCORE_COLUMNS))]
        label = f"{row['model']}{' (paper)' if reference else ''}"
        ax.bar(positions, values, width, label=label, hatch="//" if reference else None,
               alpha=0.45 if reference else 1.0, edgecolor="black" if not reference else None, linewidth=0.6)
    ax.set_xticks(range(len(SCORE_COLUMNS)), SCORE_COLUMNS)
    ax.set_ylim(0, 100)
    ax.set_ylabel("accuracy (%)")
    ax.set_title(f"HAICBench, {protocol} evaluation")
    if len(rows):
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    return _png(fig)
