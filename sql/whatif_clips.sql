-- clips re-decided from each candidate clip's stored length (its value, at the millisecond precision
-- the stage compares; a clip dropped for its rank has it recomputed from its window in detail) and,
-- as haic_core.accumulation.scenes.at_most_per_video does, each video's in-length clips ranked by
-- start: those after the first $max_clips_per_video are dropped. A recomputed length within 1.5 ms of
-- a threshold, or a rank that an unsettled clip could move, is unknown. $min_length_s, $max_length_s.
WITH measured AS (
    SELECT
        *,
        CAST(json_extract(detail, '$.start_s') AS DOUBLE) AS start_s,
        CASE WHEN metric = 'clip_length_s' THEN value
             ELSE round(CAST(json_extract(detail, '$.end_s') AS DOUBLE)
                        - CAST(json_extract(detail, '$.start_s') AS DOUBLE), 3) END AS length_s,
        metric = 'clip_length_s' AS length_exact
    FROM whatif_stage_rows('clips')
),
by_length AS (
    SELECT *,
        CASE
            WHEN unsettled IS NOT NULL THEN unsettled
            WHEN item_kind <> 'clip' OR length_s IS NULL OR start_s IS NULL THEN 'unknown:no clip length stored'
            WHEN NOT length_exact AND least(abs(length_s - $min_length_s), abs(length_s - $max_length_s)) < 0.0015
                THEN 'unknown:length recomputed from the window, too close to a threshold'
            WHEN length_s < $min_length_s THEN 'too_short'
            WHEN length_s > $max_length_s THEN 'too_long'
            ELSE 'in_length'
        END AS length_outcome
    FROM measured
),
ranked AS (
    SELECT *,
        sum(CASE WHEN length_outcome = 'in_length' THEN 1 ELSE 0 END)
            OVER (PARTITION BY partition, parent_id ORDER BY start_s ROWS UNBOUNDED PRECEDING) AS rank_sure,
        sum(CASE WHEN length_outcome = 'in_length' OR length_outcome LIKE 'unknown:%' THEN 1 ELSE 0 END)
            OVER (PARTITION BY partition, parent_id ORDER BY start_s ROWS UNBOUNDED PRECEDING) AS rank_most
    FROM by_length
),
decided AS (
    SELECT *,
        CASE
            WHEN length_outcome <> 'in_length' THEN length_outcome
            WHEN rank_most <= $max_clips_per_video THEN 'kept'
            WHEN rank_sure > $max_clips_per_video THEN 'too_many_clips_of_video'
            ELSE 'unknown:its rank among the video''s clips depends on an unsettled clip'
        END AS outcome
    FROM ranked
)
SELECT
    *,
    CASE WHEN outcome = 'too_many_clips_of_video' THEN 'clips_of_video' ELSE 'clip_length_s' END AS new_metric,
    CASE WHEN outcome = 'too_many_clips_of_video' THEN CAST(rank_sure AS DOUBLE) ELSE length_s END AS new_value,
    CASE outcome WHEN 'too_many_clips_of_video' THEN CAST($max_clips_per_video AS DOUBLE)
                 WHEN 'too_long' THEN CAST($max_length_s AS DOUBLE) ELSE CAST($min_length_s AS DOUBLE) END AS new_threshold
FROM decided
