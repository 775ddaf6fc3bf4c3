-- Items whose verdict at a stage changes (kept <-> dropped), with the measured value and both
-- thresholds, nearest the new threshold first (the margin relative to the threshold).
SELECT
    d.stage, d.partition, d.source, d.item_id, d.parent_id, d.item_kind,
    d.old_verdict, d.new_verdict, d.old_code, d.new_code, d.new_metric AS metric, d.new_value AS value,
    d.old_threshold, d.new_threshold,
    abs(d.new_value - d.new_threshold) / greatest(abs(d.new_threshold), 1e-12) AS margin
FROM whatif_decided AS d
LEFT JOIN stage_order AS o USING (stage)
WHERE d.old_verdict IN ('kept', 'dropped') AND d.new_verdict IN ('kept', 'dropped') AND d.old_verdict <> d.new_verdict
ORDER BY coalesce(o.position, 999), d.stage, margin NULLS LAST, d.item_id
