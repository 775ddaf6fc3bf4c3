-- Kept / dropped / error per source and stage, in pipeline order.
SELECT
    l.source,
    l.stage,
    count(*) FILTER (WHERE l.verdict = 'kept')    AS kept,
    count(*) FILTER (WHERE l.verdict = 'dropped') AS dropped,
    count(*) FILTER (WHERE l.verdict = 'error')   AS error,
    count(*)                                      AS total
FROM ledger AS l
LEFT JOIN stage_order AS o USING (stage)
GROUP BY l.source, l.stage, o.position
ORDER BY l.source, coalesce(o.position, 999), l.stage
