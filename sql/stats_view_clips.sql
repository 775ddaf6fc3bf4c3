-- The clips the statistics describe ({table}: action_filtered, else clips), under the names the
-- stats_*.sql queries use.
CREATE OR REPLACE TEMP VIEW clips AS
SELECT clip_id, video_id, start_s, end_s, length_s AS duration_s FROM {table}
