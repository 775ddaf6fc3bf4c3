-- A stage's re-decision (one of sql/whatif_<stage>.sql, filled in below by the engine: the stored row's columns
-- and its `outcome`, a reason code, 'kept', or 'unknown:<why>', with the deciding metric, value and
-- threshold) as predicted rows of whatif_decided.
SELECT
    stage, partition, source, item_id, parent_id, item_kind,
    verdict AS old_verdict, reason_code AS old_code, metric AS old_metric, value AS old_value, threshold AS old_threshold,
    CASE WHEN outcome LIKE 'unknown:%' THEN 'unknown' WHEN outcome = 'kept' THEN 'kept' ELSE 'dropped' END AS new_verdict,
    CASE WHEN outcome LIKE 'unknown:%' THEN NULL ELSE outcome END AS new_code,
    CASE WHEN outcome LIKE 'unknown:%' THEN NULL ELSE new_metric END AS new_metric,
    CASE WHEN outcome LIKE 'unknown:%' THEN NULL ELSE new_value END AS new_value,
    CASE WHEN outcome LIKE 'unknown:%' THEN NULL ELSE new_threshold END AS new_threshold,
    CASE WHEN outcome LIKE 'unknown:%' THEN substr(outcome, 9) END AS note
FROM ({decided})
