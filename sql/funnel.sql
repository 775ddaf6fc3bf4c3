-- Kept / dropped / error per source, stage and kind of item (video, clip, caption, qa, ...), in
-- pipeline order: the sum of the per-partition counts (view ledger_counts, see ledger_counts.sql).
-- A stage that decides on items of two kinds (haicbench_split: videos and QA) has a row for each.
-- Pending: items whose LLM call waits in a batch job (verdict 'pending'), the rest of the total, so
-- count files of any age add up.
SELECT
    c.source,
    c.stage,
    c.item_kind,
    CAST(sum(c.kept) AS BIGINT)    AS kept,
    CAST(sum(c.dropped) AS BIGINT) AS dropped,
    CAST(sum(c.error) AS BIGINT)   AS error,
    CAST(sum(c.total) AS BIGINT)   AS total,
    CAST(sum(c.total - c.kept - c.dropped - c.error) AS BIGINT) AS pending
FROM ledger_counts AS c
LEFT JOIN stage_order AS o USING (stage)
GROUP BY c.source, c.stage, c.item_kind, o.position
ORDER BY c.source, coalesce(o.position, 999), c.stage, c.item_kind
