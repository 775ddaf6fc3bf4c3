-- Kept / dropped / error per source, stage, partition and kind of item: the per-partition aggregate
-- written beside each ledger file (tables/ledger_counts/<stage>/<partition>.parquet), so the funnel
-- is a sum over small files and no step rebuilds it from the whole ledger. Kinds are counted apart
-- (the split decides on videos and on QA: their sum would count nothing).
SELECT
    CAST(l.source AS VARCHAR)                        AS source,
    CAST(l.stage AS VARCHAR)                         AS stage,
    CAST(l.partition AS VARCHAR)                     AS partition,
    CAST(l.item_kind AS VARCHAR)                     AS item_kind,
    count(*) FILTER (WHERE l.verdict = 'kept')       AS kept,
    count(*) FILTER (WHERE l.verdict = 'dropped')    AS dropped,
    count(*) FILTER (WHERE l.verdict = 'error')      AS error,
    count(*)                                         AS total
FROM ledger AS l
GROUP BY ALL
