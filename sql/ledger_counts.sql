-- Kept / dropped / error per source, stage and partition: the per-partition aggregate written
-- beside each ledger file (tables/ledger_counts/<stage>/<partition>.parquet), so the funnel is a
-- sum over small files and no step rebuilds it from the whole ledger.
SELECT
    CAST(l.source AS VARCHAR)                        AS source,
    CAST(l.stage AS VARCHAR)                         AS stage,
    CAST(l.partition AS VARCHAR)                     AS partition,
    count(*) FILTER (WHERE l.verdict = 'kept')       AS kept,
    count(*) FILTER (WHERE l.verdict = 'dropped')    AS dropped,
    count(*) FILTER (WHERE l.verdict = 'error')      AS error,
    count(*)                                         AS total
FROM ledger AS l
GROUP BY ALL
