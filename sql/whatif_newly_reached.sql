-- Items that reach $stage only under the new settings: kept by $upstream now, with no row at $stage
-- (the stored run never measured them there), and items unknown at $upstream that $stage decides on
-- as they are ($same_items). Their verdict at $stage is unknown. A stage with no rows in a partition
-- is taken as not run there (captions without an LLM): nothing reaches it.
INSERT INTO whatif_decided
SELECT
    $stage AS stage, u.partition, u.source, u.item_id, u.parent_id, u.item_kind,
    NULL AS old_verdict, NULL AS old_code, NULL AS old_metric, NULL AS old_value, NULL AS old_threshold,
    'unknown' AS new_verdict, NULL AS new_code, NULL AS new_metric, NULL AS new_value, NULL AS new_threshold,
    CASE WHEN u.new_verdict = 'kept'
         THEN 'reaches it only now (' || $upstream || ' keeps it); the stored run never measured it here'
         ELSE 'unknown at ' || $upstream END AS note
FROM whatif_decided AS u
WHERE u.stage = $upstream
  AND ((u.new_verdict = 'kept' AND u.old_verdict IS DISTINCT FROM 'kept')
       OR ($same_items AND u.new_verdict = 'unknown' AND u.old_verdict IS NULL))
  AND EXISTS (SELECT 1 FROM whatif_ledger AS l WHERE l.stage = $stage AND l.partition = u.partition)
  AND NOT EXISTS (
      SELECT 1 FROM whatif_decided AS d
      WHERE d.stage = $stage AND d.partition = u.partition AND (d.item_id = u.item_id OR d.parent_id = u.item_id))
