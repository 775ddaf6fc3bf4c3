-- The metadata durations the videos stage checks before fetching, per partition (the file's name:
-- tables/metadata_filtered/<partition>.parquet). {files}: the table's glob, filled by the engine.
CREATE OR REPLACE TEMP TABLE whatif_metadata_durations AS
SELECT
    regexp_extract(filename, '([^/]+)\.parquet$', 1) AS partition,
    CAST(video_id AS VARCHAR)                         AS video_id,
    CAST(duration_s AS DOUBLE)                        AS duration_s
FROM read_parquet({files}, union_by_name = true, filename = true)
