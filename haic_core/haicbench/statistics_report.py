"""The dataset_statistics report: which warehouse tables each statistic is computed from, the
statistics of whatever tables exist (the rest named as skipped), the headline numbers and the
plots. The queries and plots themselves are `haic_core.haicbench.dataset_statistics`.

The caller gives a DuckDB connection to the warehouse; this module only queries it (through
temporary views) and never writes a table.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import duckdb
import pandas as pd

from haic_core.haicbench.dataset_statistics import (PAPER_YIELD_PCT, caption_length_summary, caption_lengths,
                                                    clip_duration_histogram, drops_by_code, funnel_by_source,
                                                    plot_caption_lengths, plot_clip_durations, plot_funnel,
                                                    plot_qa_per_category,
                                                    qa_per_category, render_word_cloud, word_frequencies)
from haic_core.sql_files import load_sql

# Caption corpora: warehouse view -> name in the statistics.
CAPTION_SOURCES = {"captions": "haic_train", "bench_captions": "haicbench"}
# QA tables, from generated to released.
QA_SOURCES = ("qa_pairs", "qa_verified", "haicbench_split")
# Clips: the accumulation stage's output when it exists, else every scene-split clip.
CLIP_SOURCES = ("action_filtered", "clips")
# The accumulation stages whose last one per partition gives that partition's yield.
ACCUMULATION_YIELD_STAGES = ("action_filtered", "pose_tracks", "human_presence", "clips")


def warehouse_table(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """The table's name in the warehouse file itself (not the connection's temporary schema)."""
    (database,), = con.execute("SELECT current_database()").fetchall()
    return f'"{database}".main.{name}'


def warehouse_statistics(con: duckdb.DuckDBPyConnection, present: Collection[str], *, stage_order: Sequence[str],
                         duration_bin_s: float, long_caption_words: int,
                         top_words: int) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """(statistic name -> table, statistic -> why it was skipped) from the warehouse tables in
    `present`: the funnel, clip durations, caption lengths and words per corpus, QA per category."""
    stats, skipped = {}, {}
    if "ledger" in present:
        stats["funnel"] = funnel_by_source(con, stage_order=stage_order)
        stats["drops_by_code"] = drops_by_code(con)
    else:
        skipped["funnel"] = "no ledger rows yet"
    clip_table = next((t for t in CLIP_SOURCES if t in present), None)
    if clip_table:
        con.execute(load_sql("stats_view_clips").format(table=warehouse_table(con, clip_table)))
        stats["clip_durations"] = clip_duration_histogram(con, duration_bin_s).assign(clip_table=clip_table)
    else:
        skipped["clip_durations"] = f"none of {list(CLIP_SOURCES)} exists yet"
    lengths, summaries, words = [], [], []
    for table, corpus in CAPTION_SOURCES.items():
        if table not in present:
            skipped[f"captions:{corpus}"] = f"no {table} table yet"
            continue
        con.execute(load_sql("stats_view_captions").format(table=warehouse_table(con, table)))
        lengths.append(caption_lengths(con).assign(corpus=corpus))
        summaries.append({"corpus": corpus, **caption_length_summary(con, long_caption_words)})
        words.append(word_frequencies(con, top_n=top_words).assign(corpus=corpus))
    if lengths:
        stats["caption_lengths"] = pd.concat(lengths, ignore_index=True)
        stats["caption_length_summary"] = pd.DataFrame(summaries)
        stats["word_frequencies"] = pd.concat(words, ignore_index=True)
    per_category = []
    for table in QA_SOURCES:
        if table not in present:
            skipped[f"qa:{table}"] = f"no {table} table yet"
            continue
        con.execute(load_sql("stats_view_qa").format(table=warehouse_table(con, table)))
        per_category.append(qa_per_category(con).assign(qa_table=table))
    if per_category:
        stats["qa_per_category"] = pd.concat(per_category, ignore_index=True)
    return stats, skipped


def accumulation_yield(funnel: pd.DataFrame) -> pd.DataFrame:
    """The last stage of the accumulation per partition: kept items over source videos, beside the paper."""
    last = funnel[funnel["stage"].isin(ACCUMULATION_YIELD_STAGES)]
    last = last.sort_values("stage_rank").groupby("partition", as_index=False).last()
    return last[["partition", "stage", "n_source_videos", "n_kept", "yield_pct_of_source", "paper_yield_low_pct",
                 "paper_yield_high_pct"]]


def headline_numbers(stats: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per headline number: statistic, subject, value."""
    rows = []
    if "funnel" in stats and len(stats["funnel"]):
        for r in accumulation_yield(stats["funnel"]).itertuples(index=False):
            rows.append(("yield_pct_of_source", f"{r.partition} ({r.stage})", r.yield_pct_of_source))
        rows.append(("paper_yield_pct_low", "paper", PAPER_YIELD_PCT[0]))
        rows.append(("paper_yield_pct_high", "paper", PAPER_YIELD_PCT[1]))
    if "clip_durations" in stats:
        rows.append(("clips", stats["clip_durations"]["clip_table"].iloc[0] if len(stats["clip_durations"]) else "",
                     float(stats["clip_durations"]["n_clips"].sum())))
    for r in stats.get("caption_length_summary", pd.DataFrame()).to_dict("records"):
        for key in ("n_captions", "mean_words", "median_words", "pct_over_long"):
            rows.append((f"caption_{key}", r["corpus"], r[key]))
    for r in stats.get("qa_per_category", pd.DataFrame()).itertuples(index=False):
        rows.append(("qa", f"{r.qa_table}/{r.category}", float(r.n_qa)))
    frame = pd.DataFrame(rows, columns=["statistic", "subject", "value"])
    return frame.astype({"value": "float64"})


def statistics_plots(stats: dict[str, pd.DataFrame], max_funnel_plots: int) -> dict[str, bytes]:
    """Picture name -> PNG: clip durations, caption lengths and a word cloud per corpus, QA per
    category per QA table, and the funnel of the first `max_funnel_plots` partitions."""
    pngs = {}
    if len(stats.get("clip_durations", ())):
        pngs["clip durations"] = plot_clip_durations(stats["clip_durations"])
    lengths = stats.get("caption_lengths", pd.DataFrame())
    for corpus, group in (lengths.groupby("corpus") if len(lengths) else ()):
        pngs[f"caption lengths ({corpus})"] = plot_caption_lengths(group)
    words = stats.get("word_frequencies", pd.DataFrame())
    for corpus, group in (words.groupby("corpus") if len(words) else ()):
        pngs[f"word cloud ({corpus})"] = render_word_cloud(group)
    per_category = stats.get("qa_per_category", pd.DataFrame())
    for table, group in (per_category.groupby("qa_table") if len(per_category) else ()):
        pngs[f"QA per category ({table})"] = plot_qa_per_category(group)
    funnel = stats.get("funnel", pd.DataFrame())
    for partition in list(dict.fromkeys(funnel["partition"]))[:max_funnel_plots] if len(funnel) else ():
        pngs[f"funnel {partition}"] = plot_funnel(funnel, partition, drops=stats.get("drops_by_code"))
    return pngs
