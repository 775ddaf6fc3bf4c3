"""dataset_statistics: the paper's statistics as DuckDB aggregate tables in the warehouse, with plots.

Reads whatever tables exist (views of the warehouse file): the ledger funnel per source and stage
beside the paper's 0.31-1.3 % yield, clip durations, caption word counts (HAICTrain machine
captions and HAICBench human captions separately), QA per category, caption word frequencies.
The inputs are shaped for `haic_core.haicbench.dataset_statistics`' SQL as temporary views of this
connection; the results are written as `stats_*` tables of the warehouse file.
"""

import pandas as pd
from dagster import AssetExecutionContext, AssetKey, Config, MetadataValue, Output, asset
from pydantic import Field

from haic_core.haicbench.dataset_statistics import (PAPER_YIELD_PCT, caption_length_summary, caption_lengths,
                                          clip_duration_histogram, funnel_by_source, plot_caption_lengths,
                                          plot_clip_durations, plot_funnel, plot_qa_per_category, qa_per_category,
                                          render_word_cloud, word_frequencies)
from haic_resources.storage.sql_files import load_sql
from haic_resources.storage.resource import StorageResource
from haic_resources.storage.warehouse import STAGES, WarehouseResource, table_views
from haic_assets.platform.io_manager import UNPARTITIONED
from haic_assets.platform.ledger import preview
from haic_assets.platform.previews import png_metadata
from haic_assets.platform.settings import stage_code_version

STAGE = "dataset_statistics"
# Caption corpora: warehouse view -> name in the statistics.
CAPTION_SOURCES = {"captions": "haic_train", "bench_captions": "haicbench"}
# QA tables, from generated to released.
QA_SOURCES = ("qa_pairs", "qa_verified", "haicbench_split")
# Clips: the accumulation stage's output when it exists, else every scene-split clip.
CLIP_SOURCES = ("action_filtered", "clips")


class DatasetStatisticsConfig(Config):
    duration_bin_s: float = Field(default=1.0, description="width of the clip-duration histogram bins")
    long_caption_words: int = Field(default=100, description="the paper notes captions are often over 100 words")
    top_words: int = Field(default=200, description="words in the frequency table and word cloud")
    max_funnel_plots: int = Field(default=6, description="funnel plots for at most this many partitions")


@asset(
    deps=[AssetKey(k) for k in ("action_filtered", "captions", "bench_captions", "qa_pairs", "qa_verified",
                                "haicbench_split")],
    io_manager_key="tables",
    group_name="haicbench",
    code_version=stage_code_version(STAGE, DatasetStatisticsConfig),
    description="Dataset statistics (funnel and yield per source, clip durations, caption lengths, QA per category, "
                "word frequencies) as stats_* tables in the DuckDB warehouse, with histograms and word clouds. "
                "Tables that do not exist yet are skipped and named in the metadata.",
)
def dataset_statistics(context: AssetExecutionContext, config: DatasetStatisticsConfig, storage: StorageResource,
                       warehouse: WarehouseResource) -> Output[pd.DataFrame]:
    tables_root = storage.tables().local_root()
    warehouse.refresh(tables_root)
    present = set(table_views(tables_root))
    stats, skipped = {}, {}
    with warehouse.connect() as con:
        (db,), = con.execute("SELECT current_database()").fetchall()

        def source(view: str) -> str:
            return f'"{db}".main.{view}'

        if "ledger" in present:
            stats["funnel"] = funnel_by_source(con, stage_order=STAGES)
        else:
            skipped["funnel"] = "no ledger rows yet"
        clip_table = next((t for t in CLIP_SOURCES if t in present), None)
        if clip_table:
            con.execute(load_sql("stats_view_clips").format(table=source(clip_table)))
            stats["clip_durations"] = clip_duration_histogram(con, config.duration_bin_s).assign(clip_table=clip_table)
        else:
            skipped["clip_durations"] = f"none of {list(CLIP_SOURCES)} exists yet"
        lengths, summaries, words = [], [], []
        for table, corpus in CAPTION_SOURCES.items():
            if table not in present:
                skipped[f"captions:{corpus}"] = f"no {table} table yet"
                continue
            con.execute(load_sql("stats_view_captions").format(table=source(table)))
            lengths.append(caption_lengths(con).assign(corpus=corpus))
            summaries.append({"corpus": corpus, **caption_length_summary(con, config.long_caption_words)})
            words.append(word_frequencies(con, top_n=config.top_words).assign(corpus=corpus))
        if lengths:
            stats["caption_lengths"] = pd.concat(lengths, ignore_index=True)
            stats["caption_length_summary"] = pd.DataFrame(summaries)
            stats["word_frequencies"] = pd.concat(words, ignore_index=True)
        per_category = []
        for table in QA_SOURCES:
            if table not in present:
                skipped[f"qa:{table}"] = f"no {table} table yet"
                continue
            con.execute(load_sql("stats_view_qa").format(table=source(table)))
            per_category.append(qa_per_category(con).assign(qa_table=table))
        if per_category:
            stats["qa_per_category"] = pd.concat(per_category, ignore_index=True)
        for name, frame in stats.items():
            con.register("stats_frame", frame)
            con.execute(load_sql("stats_store_table").format(table=source("stats_" + name)))
            con.unregister("stats_frame")

    pngs = _plots(stats, config)
    summary = _summary(stats)
    metadata = {
        "stats_tables": MetadataValue.json(sorted(f"stats_{n}" for n in stats)),
        "skipped": MetadataValue.json(skipped),
        "warehouse": MetadataValue.path(warehouse.database),
        "rows": len(summary),
        "summary": preview(summary, rows=40),
    }
    if "funnel" in stats:
        metadata["yield_vs_paper"] = preview(_yield(stats["funnel"]), rows=20)
    metadata.update(png_metadata(storage, STAGE, UNPARTITIONED, pngs))
    if not pngs:
        metadata["previews"] = MetadataValue.md("_no plots: none of the tables they need exists yet_")
    context.log.info(f"statistics: {sorted(stats)} written to {warehouse.database}; skipped {skipped}")
    return Output(summary, metadata=metadata)


def _yield(funnel: pd.DataFrame) -> pd.DataFrame:
    """The last stage of the accumulation per partition: kept items over source videos, beside the paper."""
    last = funnel[funnel["stage"].isin(["action_filtered", "pose_tracks", "human_presence", "clips"])]
    last = last.sort_values("stage_rank").groupby("partition", as_index=False).last()
    return last[["partition", "stage", "n_source_videos", "n_kept", "yield_pct_of_source", "paper_yield_low_pct",
                 "paper_yield_high_pct"]]


def _summary(stats: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One row per headline number: statistic, subject, value."""
    rows = []
    if "funnel" in stats and len(stats["funnel"]):
        for r in _yield(stats["funnel"]).itertuples(index=False):
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


def _plots(stats: dict[str, pd.DataFrame], config: DatasetStatisticsConfig) -> dict[str, bytes]:
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
    for partition in list(dict.fromkeys(funnel["partition"]))[:config.max_funnel_plots] if len(funnel) else ():
        pngs[f"funnel {partition}"] = plot_funnel(funnel, partition)
    return pngs
