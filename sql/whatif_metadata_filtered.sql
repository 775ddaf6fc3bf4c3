-- metadata_filtered re-decided from each video's stored metadata size and verb flag (detail), as
-- haic_core.accumulation.metadata_filter.filter_metadata decides: a known size below the resolution
-- rule ($min_short_side_px, $min_long_side_px) first, then no description, then no verb; an unknown
-- size is deferred to the probe (kept here). A row dropped for its resolution whose description was
-- empty is predicted as no_verb (the ledger does not say which of the two): its verdict is the same.
WITH measured AS (
    SELECT
        *,
        CAST(json_extract(detail, '$.width') AS BIGINT)    AS width,
        CAST(json_extract(detail, '$.height') AS BIGINT)   AS height,
        CAST(json_extract(detail, '$.has_verb') AS BOOLEAN) AS has_verb
    FROM whatif_stage_rows('metadata_filtered')
),
decided AS (
    SELECT *,
        CASE
            WHEN unsettled IS NOT NULL THEN unsettled
            WHEN has_verb IS NULL THEN 'unknown:no verb flag stored'
            WHEN width IS NOT NULL AND height IS NOT NULL
                 AND (least(width, height) < $min_short_side_px OR greatest(width, height) < $min_long_side_px)
                THEN 'low_resolution'
            WHEN reason_code = 'no_description' THEN 'no_description'
            WHEN NOT has_verb THEN 'no_verb'
            ELSE 'kept'
        END AS outcome
    FROM measured
)
SELECT
    *,
    CASE WHEN outcome = 'low_resolution' THEN 'short_side_px' ELSE 'has_verb' END AS new_metric,
    CASE outcome WHEN 'low_resolution' THEN CAST(least(width, height) AS DOUBLE) WHEN 'kept' THEN 1.0 ELSE 0.0 END
        AS new_value,
    CASE WHEN outcome = 'low_resolution' THEN CAST($min_short_side_px AS DOUBLE) ELSE 1.0 END AS new_threshold
FROM decided
