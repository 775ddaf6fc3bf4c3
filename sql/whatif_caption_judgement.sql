-- caption_judgement re-decided where the LLM judge scored the caption (metric judge_score): kept when
-- the score reaches $min_judge_score (haic_core.haic_train.caption_format.judge_decision). Captions
-- the format check dropped never reached the judge and stay dropped; other rows keep their verdict.
SELECT
    stage, partition, source, item_id, parent_id, item_kind,
    verdict AS old_verdict, reason_code AS old_code, metric AS old_metric, value AS old_value, threshold AS old_threshold,
    CASE WHEN verdict NOT IN ('kept', 'dropped') THEN 'unknown'
         WHEN metric <> 'judge_score' OR metric IS NULL OR value IS NULL THEN verdict
         WHEN value >= $min_judge_score THEN 'kept' ELSE 'dropped' END AS new_verdict,
    CASE WHEN verdict NOT IN ('kept', 'dropped') THEN NULL
         WHEN metric <> 'judge_score' OR metric IS NULL OR value IS NULL THEN reason_code
         WHEN value >= $min_judge_score THEN 'kept' ELSE 'low_judge_score' END AS new_code,
    metric AS new_metric,
    value AS new_value,
    CASE WHEN metric = 'judge_score' THEN CAST($min_judge_score AS DOUBLE) ELSE threshold END AS new_threshold,
    CASE WHEN verdict NOT IN ('kept', 'dropped') THEN 'the stored run has no verdict (' || verdict || ')' END AS note
FROM whatif_ledger
WHERE stage = 'caption_judgement'
