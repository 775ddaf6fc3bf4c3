-- Per video and category: how many verified QA the pool holds, and the video's seeded order
-- key. md5, not hash(): md5 is stable across DuckDB versions, so a seed means the same split.
-- Inputs: verified_qa_pool; parameter $seed.
SELECT
    video_id,
    category,
    count(*) AS n_qa,
    md5(CAST($seed AS VARCHAR) || ':' || video_id) AS video_order_key
FROM verified_qa_pool
GROUP BY video_id, category
ORDER BY video_order_key, video_id, category;
