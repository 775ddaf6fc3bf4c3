-- Items whose verdict at a stage nothing stored settles, grouped by why.
SELECT d.stage, d.note AS why, count(*) AS items, min(d.item_id) AS example
FROM whatif_decided AS d
LEFT JOIN stage_order AS o USING (stage)
WHERE d.new_verdict = 'unknown'
GROUP BY d.stage, o.position, d.note
ORDER BY coalesce(o.position, 999), d.stage, items DESC, why
