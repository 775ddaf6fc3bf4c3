-- The chosen benchmark videos with what the pool holds for each, in selection order.
-- Inputs: verified_qa_pool; chosen_videos (video_id, selection_rank) from the greedy choice.
SELECT
    c.video_id,
    c.selection_rank,
    string_agg(DISTINCT p.clip_id, ',' ORDER BY p.clip_id) AS clip_ids,
    count(p.qa_id) AS n_pool_qa
FROM chosen_videos AS c
JOIN verified_qa_pool AS p ON p.video_id = c.video_id
GROUP BY c.video_id, c.selection_rank
ORDER BY c.selection_rank;
