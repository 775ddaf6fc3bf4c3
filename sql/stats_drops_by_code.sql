-- Drops per source partition, stage and reason code (the funnel plot labels each stage with them).
-- Inputs: ledger (item_id, partition, stage, verdict, reason_code).
SELECT partition, stage, reason_code, count(DISTINCT item_id) AS n_dropped
FROM ledger
WHERE verdict = 'dropped' AND reason_code IS NOT NULL
GROUP BY partition, stage, reason_code
ORDER BY partition, stage, n_dropped DESC, reason_code;
