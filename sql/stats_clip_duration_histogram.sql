-- Clip durations in bins of $bin_width_s seconds (the paper keeps 5 s to 20 s).
-- Inputs: clips (clip_id, video_id, start_s, end_s, duration_s); parameter $bin_width_s.
WITH durations AS (
    SELECT coalesce(duration_s, end_s - start_s) AS duration_s
    FROM clips
    WHERE coalesce(duration_s, end_s - start_s) IS NOT NULL
)
SELECT
    floor(duration_s / $bin_width_s) * $bin_width_s AS bin_start_s,
    floor(duration_s / $bin_width_s) * $bin_width_s + $bin_width_s AS bin_end_s,
    count(*) AS n_clips
FROM durations
GROUP BY ALL
ORDER BY bin_start_s;
