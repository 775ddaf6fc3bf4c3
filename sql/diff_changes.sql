-- Items whose verdict, reason (its code, or its words with the numbers masked) or measured value
-- changed between the two states, with both sides; items found on one side only are added/removed.
-- A threshold alone (and a reason differing only in its numbers) is no change of the item.
WITH b AS (SELECT * FROM diff_states WHERE side = 'before'),
     a AS (SELECT * FROM diff_states WHERE side = 'after'),
compared AS (
    SELECT
        coalesce(a.stage, b.stage) AS stage, coalesce(a.item_id, b.item_id) AS item_id,
        b.verdict AS verdict_before, a.verdict AS verdict_after,
        b.reason_code AS code_before, a.reason_code AS code_after,
        coalesce(a.metric, b.metric) AS metric, b.value AS value_before, a.value AS value_after,
        b.threshold AS threshold_before, a.threshold AS threshold_after,
        b.reason AS reason_before, a.reason AS reason_after,
        CASE
            WHEN b.item_id IS NULL THEN 'added'
            WHEN a.item_id IS NULL THEN 'removed'
            WHEN b.verdict IS DISTINCT FROM a.verdict THEN 'verdict'
            WHEN b.reason_code IS DISTINCT FROM a.reason_code
                 OR regexp_replace(b.reason, '\d+(\.\d+)?', '#', 'g')
                    IS DISTINCT FROM regexp_replace(a.reason, '\d+(\.\d+)?', '#', 'g') THEN 'reason'
            WHEN (b.value IS NULL) <> (a.value IS NULL)
                 OR abs(a.value - b.value) > 1e-9 * greatest(1.0, abs(b.value)) THEN 'value'
        END AS change
    FROM b FULL OUTER JOIN a ON a.stage = b.stage AND a.item_id = b.item_id
)
SELECT c.*
FROM compared AS c
LEFT JOIN stage_order AS o USING (stage)
WHERE c.change IS NOT NULL
ORDER BY coalesce(o.position, 999), c.stage, c.item_id
