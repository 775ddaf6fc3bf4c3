-- How many verified QA the whole pool holds per category, beside the category's quota.
-- Inputs: verified_qa_pool (qa_id, video_id, category, ...), category_quota (category, quota).
SELECT
    q.category,
    q.quota,
    count(p.qa_id) AS n_available
FROM category_quota AS q
LEFT JOIN verified_qa_pool AS p ON p.category = q.category
GROUP BY q.category, q.quota
ORDER BY q.category;
