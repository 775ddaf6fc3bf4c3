"""Dataset statistics (the paper, sections 1 and 3): the curation funnel, clip durations, caption lengths,
QA per category, caption word frequencies, and their plots.

The numbers are DuckDB queries (`sql/stats_*.sql`) over views the caller provides on a
connection: `ledger`, `clips`, `captions`, `qa` (see `register_views` for plain DataFrames).
The plots are PNG bytes rendered with matplotlib's Agg backend and `wordcloud`, at a fixed
pixel size (no tight bounding box, so the size is what the caller asked for).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Iterable, Mapping, Sequence

import duckdb
import pandas as pd

from haic_core.ledger import STAGE_ORDER
from haic_core.sql_files import load_sql

# matplotlib and wordcloud are imported where a plot is drawn: every Dagster step process and CLI
# command imports this module with the code location, and few of them draw (about 2.5 s saved each).

# The accumulation stages in pipeline order (the paper, section 1), then captioning and QA; stages not
# listed sort after these.
DEFAULT_STAGE_ORDER: tuple[str, ...] = STAGE_ORDER
PAPER_YIELD_PCT = (0.31, 1.3)
# Words every standardized caption repeats ("There are 2 subjects ...") say nothing about
# the content; they are dropped from the word cloud along with English stop-words.
CAPTION_FORMAT_WORDS = frozenset({"subject", "subjects", "there", "first", "second", "then", "also"})


@lru_cache(maxsize=1)
def default_stop_words() -> frozenset[str]:
    """English stop-words (wordcloud's list) and the caption format's own words."""
    from wordcloud import STOPWORDS

    return frozenset(STOPWORDS) | CAPTION_FORMAT_WORDS


def register_views(con: duckdb.DuckDBPyConnection, **frames: pd.DataFrame) -> duckdb.DuckDBPyConnection:
    """Register DataFrames as the views the statistics read (ledger=, clips=, captions=, qa=)."""
    for name, frame in frames.items():
        con.register(name, frame)
    return con


def _query(con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None) -> pd.DataFrame:
    return con.execute(load_sql(name), dict(params or {})).df()


# ---------------------------------------------------------------------------------------------
# Numbers


def funnel_by_source(
    con: duckdb.DuckDBPyConnection,
    stage_order: Iterable[str] = DEFAULT_STAGE_ORDER,
    paper_yield_pct: tuple[float, float] = PAPER_YIELD_PCT,
) -> pd.DataFrame:
    """Per partition and stage: n_in, n_kept, n_dropped, n_error, stage_keep_pct,
    n_source_videos, yield_pct_of_source and the paper's yield range beside it."""
    stages = list(stage_order)
    con.register("stage_order", pd.DataFrame({"stage": stages, "stage_rank": range(1, len(stages) + 1)}))
    return _query(con, "stats_funnel",
                  {"paper_yield_low_pct": paper_yield_pct[0], "paper_yield_high_pct": paper_yield_pct[1]})


def drops_by_code(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """partition, stage, reason_code, n_dropped (ledgers written before reason codes have none)."""
    columns = {row[0] for row in con.execute("DESCRIBE ledger").fetchall()}
    if "reason_code" not in columns:
        return pd.DataFrame({"partition": pd.Series(dtype="string"), "stage": pd.Series(dtype="string"),
                             "reason_code": pd.Series(dtype="string"), "n_dropped": pd.Series(dtype="int64")})
    return _query(con, "stats_drops_by_code")


def clip_duration_histogram(con: duckdb.DuckDBPyConnection, bin_width_s: float = 1.0) -> pd.DataFrame:
    """bin_start_s, bin_end_s, n_clips."""
    return _query(con, "stats_clip_duration_histogram", {"bin_width_s": float(bin_width_s)})


def caption_lengths(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """clip_id, n_words per caption."""
    return _query(con, "stats_caption_lengths")


def caption_length_summary(con: duckdb.DuckDBPyConnection, long_caption_words: int = 100) -> dict[str, Any]:
    """n_captions, mean/median/min/max words, pct_over_long (share over `long_caption_words`)."""
    row = _query(con, "stats_caption_length_summary", {"long_caption_words": long_caption_words})
    return row.to_dict("records")[0]


def qa_per_category(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """category, n_qa, n_clips, pct_of_qa."""
    return _query(con, "stats_qa_per_category")


def word_frequencies(
    con: duckdb.DuckDBPyConnection,
    top_n: int = 200,
    stop_words: Iterable[str] | None = None,
    min_word_length: int = 2,
) -> pd.DataFrame:
    """word, n: the `top_n` most frequent caption words without stop-words (default_stop_words())."""
    stop_words = default_stop_words() if stop_words is None else stop_words
    con.register("stop_words", pd.DataFrame({"word": sorted({w.lower() for w in stop_words})}))
    return _query(con, "stats_word_frequencies", {"top_n": top_n, "min_word_length": min_word_length})


@dataclass(frozen=True)
class DatasetStatistics:
    funnel: pd.DataFrame
    clip_durations: pd.DataFrame
    caption_lengths: pd.DataFrame
    caption_length_summary: dict[str, Any]
    qa_per_category: pd.DataFrame
    word_frequencies: pd.DataFrame


def compute_dataset_statistics(con: duckdb.DuckDBPyConnection) -> DatasetStatistics:
    """Every statistic, with defaults; the connection must hold all four views."""
    return DatasetStatistics(
        funnel=funnel_by_source(con),
        clip_durations=clip_duration_histogram(con),
        caption_lengths=caption_lengths(con),
        caption_length_summary=caption_length_summary(con),
        qa_per_category=qa_per_category(con),
        word_frequencies=word_frequencies(con),
    )


# ---------------------------------------------------------------------------------------------
# Plots (PNG bytes of exactly width_px x height_px)

DPI = 100


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: no display in Dagster workers or CI
    import matplotlib.pyplot as plt

    return plt


def _figure(width_px: int, height_px: int):
    return _pyplot().subplots(figsize=(width_px / DPI, height_px / DPI), dpi=DPI)


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    _pyplot().close(fig)
    return buffer.getvalue()


def plot_clip_durations(histogram: pd.DataFrame, width_px: int = 800, height_px: int = 500) -> bytes:
    """Bar chart of `clip_duration_histogram`; the paper's 5 s and 20 s limits marked."""
    fig, ax = _figure(width_px, height_px)
    widths = histogram["bin_end_s"] - histogram["bin_start_s"]
    ax.bar(histogram["bin_start_s"], histogram["n_clips"], width=widths, align="edge", edgecolor="white")
    for limit in (5, 20):
        ax.axvline(limit, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("clip duration (s)")
    ax.set_ylabel("clips")
    ax.set_title("Clip durations")
    fig.tight_layout()
    return _png(fig)


def plot_caption_lengths(lengths: pd.DataFrame, width_px: int = 800, height_px: int = 500, bins: int = 30) -> bytes:
    """Histogram of words per caption (`caption_lengths`), 100 words marked."""
    fig, ax = _figure(width_px, height_px)
    ax.hist(lengths["n_words"], bins=bins, edgecolor="white")
    ax.axvline(100, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("words per caption")
    ax.set_ylabel("captions")
    ax.set_title("Caption lengths")
    fig.tight_layout()
    return _png(fig)


def plot_qa_per_category(per_category: pd.DataFrame, width_px: int = 800, height_px: int = 500) -> bytes:
    """Bar chart of `qa_per_category`."""
    fig, ax = _figure(width_px, height_px)
    ax.bar(per_category["category"].str.replace("_", " "), per_category["n_qa"])
    ax.set_ylabel("QA pairs")
    ax.set_title("QA pairs per category")
    fig.tight_layout()
    return _png(fig)


def funnel_bars(kept: Sequence[int]) -> list[tuple[int, int]]:
    """(position, length) of the funnel's bars. A log axis has no 0: a stage that kept nothing gets
    no bar (never a bar of 1) and is labelled "0 kept" instead."""
    return [(y, int(n)) for y, n in enumerate(kept) if n > 0]


def funnel_labels(drops: pd.DataFrame | None, partition: str, stages: Sequence[str], most: int = 3) -> list[str]:
    """Per stage, its drops by reason code ("low_box_coverage 12, too_few_people 3"), most first."""
    if drops is None or not len(drops):
        return ["" for _ in stages]
    own = drops[drops["partition"] == partition]
    labels = []
    for stage in stages:
        rows = own[own["stage"] == stage].sort_values(["n_dropped", "reason_code"], ascending=[False, True])
        parts = [f"{r.reason_code} {int(r.n_dropped)}" for r in rows.head(most).itertuples(index=False)]
        labels.append(", ".join(parts) + (", …" if len(rows) > most else ""))
    return labels


def plot_funnel(funnel: pd.DataFrame, partition: str, width_px: int = 800, height_px: int = 500,
                drops: pd.DataFrame | None = None) -> bytes:
    """Items kept after each stage for one partition, log scale (the funnel spans ~3 decades), each
    stage labelled with its drops by reason code."""
    rows = funnel[funnel["partition"] == partition]
    fig, ax = _figure(width_px, height_px)
    kept = rows["n_kept"].astype(int).tolist()
    positions = list(range(len(kept)))
    drawn = funnel_bars(kept)
    ax.barh([y for y, _ in drawn], [n for _, n in drawn])
    ax.set_yticks(positions, rows["stage"].astype(str).tolist())
    ax.set_xscale("log")
    ax.set_xlim(left=0.8, right=max([*kept, 1]) * 1.5)
    for y, n, label in zip(positions, kept, funnel_labels(drops, partition, rows["stage"].astype(str).tolist())):
        if n == 0:
            ax.text(0.85, y, "0 kept", va="center", ha="left")
        if label:
            ax.text(max(n, 0.85), y + 0.3, f" dropped: {label}", va="center", ha="left", fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("items kept (log)")
    ax.set_title(f"Curation funnel: {partition}")
    fig.tight_layout()
    return _png(fig)


def render_word_cloud(
    frequencies: Mapping[str, float] | pd.DataFrame,
    width_px: int = 800,
    height_px: int = 400,
    seed: int = 0,
) -> bytes:
    """Word cloud PNG from word -> count (or the `word_frequencies` frame); seeded layout."""
    if isinstance(frequencies, pd.DataFrame):
        frequencies = dict(zip(frequencies["word"], frequencies["n"]))
    if not frequencies:
        raise ValueError("a word cloud needs at least one word")
    from wordcloud import WordCloud

    cloud = WordCloud(width=width_px, height=height_px, background_color="white", random_state=seed)
    image = cloud.generate_from_frequencies({str(k): float(v) for k, v in frequencies.items()}).to_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
