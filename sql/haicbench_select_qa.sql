-- The per-category quota pick: exactly `quota` QA per category, only from chosen videos, and
-- every chosen video contributing at least one QA where the quotas allow it.
-- Inputs: verified_qa_pool; chosen_videos (video_id, selection_rank);
--         category_quota (category, quota); parameter $seed.
WITH candidates AS (
    SELECT
        p.*,
        md5(CAST($seed AS VARCHAR) || ':' || p.qa_id) AS qa_order_key
    FROM verified_qa_pool AS p
    JOIN chosen_videos AS v ON v.video_id = p.video_id
),
-- Each chosen video's first QA in seeded order is its anchor: taken before any other QA, so
-- no chosen video ends up without a question.
anchors AS (
    SELECT qa_id, category, qa_order_key
    FROM candidates
    QUALIFY row_number() OVER (PARTITION BY video_id ORDER BY qa_order_key) = 1
),
-- A category cannot take more anchors than its quota (only in degenerate pools); the runner
-- reports videos left without a question.
kept_anchors AS (
    SELECT qa_id, category
    FROM (
        SELECT
            a.qa_id,
            a.category,
            q.quota,
            row_number() OVER (PARTITION BY a.category ORDER BY a.qa_order_key) AS rank_in_category
        FROM anchors AS a
        JOIN category_quota AS q ON q.category = a.category
    )
    WHERE rank_in_category <= quota
),
anchor_counts AS (
    SELECT category, count(*) AS n_anchors
    FROM kept_anchors
    GROUP BY category
),
-- The rest of each quota: a video's first question in a category before its second, so the
-- questions spread over videos; seeded order within that.
fill_ranked AS (
    SELECT
        c.qa_id,
        c.category,
        row_number() OVER (
            PARTITION BY c.category
            ORDER BY c.rank_in_video_category, c.qa_order_key
        ) AS fill_rank
    FROM (
        SELECT
            *,
            row_number() OVER (PARTITION BY video_id, category ORDER BY qa_order_key) AS rank_in_video_category
        FROM candidates
    ) AS c
    WHERE c.qa_id NOT IN (SELECT qa_id FROM kept_anchors)
),
fills AS (
    SELECT f.qa_id, f.category
    FROM fill_ranked AS f
    JOIN category_quota AS q ON q.category = f.category
    LEFT JOIN anchor_counts AS a ON a.category = f.category
    WHERE f.fill_rank <= q.quota - coalesce(a.n_anchors, 0)
),
picked AS (
    SELECT qa_id, 'anchor' AS picked_as FROM kept_anchors
    UNION ALL
    SELECT qa_id, 'fill' AS picked_as FROM fills
)
SELECT
    c.* EXCLUDE (qa_order_key),
    v.selection_rank,
    k.picked_as
FROM picked AS k
JOIN candidates AS c ON c.qa_id = k.qa_id
JOIN chosen_videos AS v ON v.video_id = c.video_id
ORDER BY c.category, c.qa_order_key;
