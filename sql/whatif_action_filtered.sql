-- action_filtered re-decided from each clip's stored keypoint L1 and affine residual, as
-- haic_core.accumulation.motion.motion_decision decides: nothing measurable (no tracklet), then the
-- motion test (L1 > $motion_l1_min), then the camera test (residual > $affine_residual_min). Each
-- value is the row's own where the stored decision was on it (full precision), else the detail's
-- (rounded to 6 decimals; within $tolerance of the threshold: unknown).
WITH measured AS (
    SELECT
        *,
        CASE WHEN metric = 'keypoint_l1' THEN value
             ELSE CAST(json_extract(detail, '$.keypoint_l1') AS DOUBLE) END AS l1,
        metric = 'keypoint_l1' AS l1_exact,
        CASE WHEN metric = 'affine_residual' THEN value
             ELSE CAST(json_extract(detail, '$.affine_residual') AS DOUBLE) END AS residual,
        metric = 'affine_residual' AS residual_exact
    FROM whatif_stage_rows('action_filtered')
),
decided AS (
    SELECT *,
        CASE
            WHEN unsettled IS NOT NULL THEN unsettled
            WHEN detail IS NULL THEN 'unknown:no motion values stored'
            WHEN l1 IS NULL THEN 'no_tracklet'
            WHEN NOT l1_exact AND l1 - $tolerance <= $motion_l1_min AND $motion_l1_min < l1 + $tolerance
                THEN 'unknown:keypoint_l1 stored rounded to 6 decimals, too close to the threshold'
            WHEN l1 <= $motion_l1_min THEN 'static_keypoints'
            WHEN residual IS NULL THEN 'no_tracklet'
            WHEN NOT residual_exact AND residual - $tolerance <= $affine_residual_min
                 AND $affine_residual_min < residual + $tolerance
                THEN 'unknown:affine_residual stored rounded to 6 decimals, too close to the threshold'
            WHEN residual <= $affine_residual_min THEN 'camera_motion'
            ELSE 'kept'
        END AS outcome
    FROM measured
)
SELECT
    *,
    CASE WHEN outcome IN ('static_keypoints', 'no_tracklet') THEN 'keypoint_l1' ELSE 'affine_residual' END AS new_metric,
    CASE outcome WHEN 'static_keypoints' THEN l1 WHEN 'no_tracklet' THEN NULL ELSE residual END AS new_value,
    CASE WHEN outcome IN ('static_keypoints', 'no_tracklet') THEN CAST($motion_l1_min AS DOUBLE)
         ELSE CAST($affine_residual_min AS DOUBLE) END AS new_threshold
FROM decided
