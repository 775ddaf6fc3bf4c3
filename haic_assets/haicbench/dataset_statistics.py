"""dataset_statistics: the paper's statistics as DuckDB aggregate tables in the warehouse, with plots.

Reads whatever tables exist (views of the warehouse file): the ledger funnel per source and stage
beside the paper's 0.31-1.3 % yield, clip durations, caption word counts (HAICTrain machine
captions and HAICBench human captions separately), QA per category, caption word frequencies
(haic_core.haicbench.statistics_report); the results are written as `stats_*` tables of the
warehouse file.
"""

from dagster import Config, MetadataValue
from pydantic import Field

from haic_core.haicbench.statistics_report import (accumulation_yield, headline_numbers, statistics_plots,
                                                   warehouse_statistics, warehouse_table)
from haic_core.sql_files import load_sql
from haic_resources.storage.warehouse import table_views
from haic_platform.ledger import preview_table
from haic_platform.stage import StageContext, StageResult, partitioned_stage


class DatasetStatisticsConfig(Config):
    duration_bin_s: float = Field(default=1.0, gt=0.0, description="width of the clip-duration histogram bins")
    long_caption_words: int = Field(default=100, ge=0, description="the paper notes captions are often over 100 words")
    top_words: int = Field(default=200, ge=0, description="words in the frequency table and word cloud")
    max_funnel_plots: int = Field(default=6, ge=0, description="funnel plots for at most this many partitions")


@partitioned_stage("dataset_statistics", DatasetStatisticsConfig, partitions=None, records_decisions=False,
                   deps=("action_filtered", "captions", "bench_captions", "qa_pairs", "qa_verified", "haicbench_split"),
                   column_docs={"statistic": "what is counted (yield_pct_of_source, clips, caption_<measure>, qa, ...)",
                                "subject": "of what: a partition and stage, a corpus, a QA table and category",
                                "value": "the number"})
def dataset_statistics(stage: StageContext, config: DatasetStatisticsConfig) -> StageResult:
    """Dataset statistics (funnel and yield per source, clip durations, caption lengths, QA per category,
    word frequencies) as stats_* tables in the DuckDB warehouse, with histograms and word clouds.
    Tables that do not exist yet are skipped and named in the metadata."""
    tables_root = stage.storage.tables().local_root()
    stage.warehouse.refresh(tables_root)
    with stage.warehouse.connect() as con:
        stats, skipped = warehouse_statistics(con, set(table_views(tables_root)),
                                              stage_order=stage.warehouse.stage_order,
                                              duration_bin_s=config.duration_bin_s,
                                              long_caption_words=config.long_caption_words, top_words=config.top_words)
        for name, frame in stats.items():
            con.register("stats_frame", frame)
            con.execute(load_sql("stats_store_table").format(table=warehouse_table(con, f"stats_{name}")))
            con.unregister("stats_frame")

    pngs = statistics_plots(stats, config.max_funnel_plots)
    summary = headline_numbers(stats)
    metadata = {
        "stats_tables": MetadataValue.json(sorted(f"stats_{n}" for n in stats)),
        "skipped": MetadataValue.json(skipped),
        "warehouse": MetadataValue.path(stage.warehouse.database),
        "summary": preview_table(summary, rows=40),
    }
    if "funnel" in stats:
        metadata["yield_vs_paper"] = preview_table(accumulation_yield(stats["funnel"]), rows=20)
    if not pngs:
        metadata["previews"] = MetadataValue.md("_no plots: none of the tables they need exists yet_")
    stage.log.info(f"statistics: {sorted(stats)} written to {stage.warehouse.database}; skipped {skipped}")
    return StageResult(summary, None, metadata=metadata, pictures=pngs)
