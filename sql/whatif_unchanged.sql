-- A stage whose settings did not change keeps its stored verdicts ($stage). Where it runs after a
-- re-decided stage ($retried), a re-run tries its error and pending items again: unknown.
SELECT
    stage, partition, source, item_id, parent_id, item_kind,
    verdict AS old_verdict, reason_code AS old_code, metric AS old_metric, value AS old_value, threshold AS old_threshold,
    CASE WHEN $retried AND verdict NOT IN ('kept', 'dropped') THEN 'unknown' ELSE verdict END AS new_verdict,
    CASE WHEN $retried AND verdict NOT IN ('kept', 'dropped') THEN NULL ELSE reason_code END AS new_code,
    metric AS new_metric, value AS new_value, threshold AS new_threshold,
    CASE WHEN $retried AND verdict NOT IN ('kept', 'dropped')
         THEN 'the stored run has no verdict (' || verdict || ')' END AS note
FROM whatif_ledger
WHERE stage = $stage
