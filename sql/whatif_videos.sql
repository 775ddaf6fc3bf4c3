-- videos re-decided as the stage decides: a video whose metadata duration (the metadata_filtered
-- table, view whatif_metadata_durations) exceeds $max_duration_s is dropped unfetched; a probed
-- video by the resolution rule on its probed size ($min_short_side_px, $min_long_side_px), then by
-- its probed duration. A video dropped unfetched that the new limit would fetch was never probed:
-- unknown.
WITH measured AS (
    SELECT
        w.*,
        coalesce(CAST(json_extract(w.detail, '$.uri_not_fetched') AS BOOLEAN), false) AS not_fetched,
        CAST(json_extract(w.detail, '$.width') AS BIGINT)       AS width,
        CAST(json_extract(w.detail, '$.height') AS BIGINT)      AS height,
        CAST(json_extract(w.detail, '$.duration_s') AS DOUBLE)  AS probed_s,
        m.duration_s                                            AS metadata_s
    FROM whatif_stage_rows('videos') AS w
    LEFT JOIN whatif_metadata_durations AS m ON m.partition = w.partition AND m.video_id = w.item_id
),
decided AS (
    SELECT *,
        least(width, height) AS short_px,
        CASE
            WHEN unsettled IS NOT NULL THEN unsettled
            WHEN not_fetched AND value > $max_duration_s THEN 'too_long_metadata'
            WHEN not_fetched THEN 'unknown:never fetched (dropped on its metadata duration), so never probed'
            WHEN metadata_s > $max_duration_s THEN 'too_long_metadata'
            WHEN width IS NULL OR height IS NULL OR probed_s IS NULL THEN 'unknown:no probed size stored'
            WHEN least(width, height) < $min_short_side_px OR greatest(width, height) < $min_long_side_px
                THEN 'low_resolution'
            WHEN probed_s > $max_duration_s THEN 'too_long'
            ELSE 'kept'
        END AS outcome
    FROM measured
)
SELECT
    * REPLACE (CASE WHEN outcome = 'too_long_metadata' THEN 'too_long' ELSE outcome END AS outcome),
    CASE WHEN outcome IN ('too_long', 'too_long_metadata') THEN 'duration_s' ELSE 'short_side_px' END AS new_metric,
    CASE outcome WHEN 'too_long' THEN probed_s
                 WHEN 'too_long_metadata' THEN (CASE WHEN not_fetched THEN value ELSE metadata_s END)
                 ELSE CAST(short_px AS DOUBLE) END AS new_value,
    CASE WHEN outcome IN ('too_long', 'too_long_metadata') THEN CAST($max_duration_s AS DOUBLE)
         ELSE CAST($min_short_side_px AS DOUBLE) END AS new_threshold
FROM decided
