-- The curation funnel: per source partition and stage, how many items entered, were kept,
-- dropped or errored, and what share of the partition's source videos the kept items are.
-- The paper's accumulation stage keeps 0.31 %-1.3 % of videos, depending on the source.
-- Inputs: ledger (item_id, item_kind, partition, stage, verdict, ...);
--         stage_order (stage, stage_rank); parameters $paper_yield_low_pct, $paper_yield_high_pct.
-- An item recorded twice at one stage (re-runs) counts once per verdict it received.
WITH source_videos AS (
    SELECT partition, count(DISTINCT item_id) AS n_source_videos
    FROM ledger
    WHERE item_kind = 'video'
    GROUP BY partition
),
per_stage AS (
    SELECT
        partition,
        stage,
        any_value(item_kind) AS item_kind,
        count(DISTINCT item_id) AS n_in,
        count(DISTINCT item_id) FILTER (WHERE verdict = 'kept') AS n_kept,
        count(DISTINCT item_id) FILTER (WHERE verdict = 'dropped') AS n_dropped,
        count(DISTINCT item_id) FILTER (WHERE verdict = 'error') AS n_error
    FROM ledger
    GROUP BY partition, stage
)
SELECT
    s.partition,
    s.stage,
    o.stage_rank,
    s.item_kind,
    s.n_in,
    s.n_kept,
    s.n_dropped,
    s.n_error,
    round(100.0 * s.n_kept / nullif(s.n_in, 0), 3) AS stage_keep_pct,
    v.n_source_videos,
    round(100.0 * s.n_kept / nullif(v.n_source_videos, 0), 3) AS yield_pct_of_source,
    $paper_yield_low_pct AS paper_yield_low_pct,
    $paper_yield_high_pct AS paper_yield_high_pct
FROM per_stage AS s
LEFT JOIN stage_order AS o ON o.stage = s.stage
LEFT JOIN source_videos AS v ON v.partition = s.partition
ORDER BY s.partition, o.stage_rank NULLS LAST, s.stage;
