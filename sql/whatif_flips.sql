-- Items whose verdict at a stage changes (kept <-> dropped): the stored decision's metric, value and
-- threshold, and the predicted one's, nearest the new threshold first (margin relative to it).
SELECT
    d.stage, d.partition, d.source, d.item_id, d.parent_id, d.item_kind,
    d.old_verdict, d.new_verdict, d.old_code, d.new_code, d.old_metric, d.old_value, d.old_threshold,
    d.new_metric AS metric, d.new_value AS value, d.new_threshold,
    abs(d.new_value - d.new_threshold) / greatest(abs(d.new_threshold), 1e-12) AS margin
FROM whatif_decided AS d
LEFT JOIN stage_order AS o USING (stage)
WHERE d.old_verdict IN ('kept', 'dropped') AND d.new_verdict IN ('kept', 'dropped') AND d.old_verdict <> d.new_verdict
ORDER BY coalesce(o.position, 999), d.stage, margin NULLS LAST, d.item_id
