-- human_presence re-decided from each clip's stored per-frame people counts and coverages (detail),
-- as haic_core.accumulation.presence.presence_decision decides: too few people in a frame, then too
-- many, then too little coverage; else kept. The least coverage is the row's own value where the
-- stored decision was on coverage (full precision), else the detail's (rounded to 6 decimals; too
-- close to the threshold to settle: unknown). $min_people, $max_people, $min_coverage, $tolerance.
WITH measured AS (
    SELECT
        *,
        list_min(CAST(json_extract(detail, '$.people_per_frame') AS INTEGER[]))   AS fewest,
        list_max(CAST(json_extract(detail, '$.people_per_frame') AS INTEGER[]))   AS most,
        CASE WHEN metric = 'box_coverage' THEN value
             ELSE list_min(CAST(json_extract(detail, '$.coverage_per_frame') AS DOUBLE[])) END AS least,
        metric = 'box_coverage' AS least_exact
    FROM whatif_stage_rows('human_presence')
),
decided AS (
    SELECT *,
        CASE
            WHEN unsettled IS NOT NULL THEN unsettled
            WHEN fewest IS NULL OR least IS NULL THEN 'unknown:no per-frame counts stored'
            WHEN fewest < $min_people THEN 'too_few_people'
            WHEN most > $max_people THEN 'too_many_people'
            WHEN NOT least_exact AND greatest(least - $tolerance, 0) < $min_coverage AND $min_coverage <= least + $tolerance
                THEN 'unknown:coverage stored rounded to 6 decimals, too close to the threshold'
            WHEN least < $min_coverage THEN 'low_box_coverage'
            ELSE 'kept'
        END AS outcome
    FROM measured
)
SELECT
    *,
    CASE WHEN outcome IN ('too_few_people', 'too_many_people') THEN 'people_count' ELSE 'box_coverage' END AS new_metric,
    CASE outcome WHEN 'too_few_people' THEN CAST(fewest AS DOUBLE) WHEN 'too_many_people' THEN CAST(most AS DOUBLE)
                 ELSE least END AS new_value,
    CASE outcome WHEN 'too_few_people' THEN CAST($min_people AS DOUBLE) WHEN 'too_many_people' THEN CAST($max_people AS DOUBLE)
                 ELSE CAST($min_coverage AS DOUBLE) END AS new_threshold
FROM decided
