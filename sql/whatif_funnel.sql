-- The funnel before (the stored verdicts) and after (the predicted ones) per source and stage.
-- unknown: items that reach the stage but whose verdict nothing stored settles.
SELECT
    d.source, d.stage,
    count(*) FILTER (WHERE d.old_verdict = 'kept')        AS kept_before,
    count(*) FILTER (WHERE d.new_verdict = 'kept')        AS kept_after,
    count(*) FILTER (WHERE d.old_verdict = 'dropped')     AS dropped_before,
    count(*) FILTER (WHERE d.new_verdict = 'dropped')     AS dropped_after,
    count(*) FILTER (WHERE d.old_verdict IN ('error', 'pending')) AS error_before,
    count(*) FILTER (WHERE d.new_verdict IN ('error', 'pending')) AS error_after,
    count(*) FILTER (WHERE d.new_verdict = 'unknown')     AS unknown_after
FROM whatif_decided AS d
LEFT JOIN stage_order AS o USING (stage)
GROUP BY d.source, d.stage, o.position
ORDER BY d.source, coalesce(o.position, 999), d.stage
