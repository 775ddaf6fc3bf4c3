-- QA pairs per category, with the share of all QA.
-- Inputs: qa (qa_id, clip_id, category).
SELECT
    category,
    count(*) AS n_qa,
    count(DISTINCT clip_id) AS n_clips,
    round(100.0 * count(*) / sum(count(*)) OVER (), 1) AS pct_of_qa
FROM qa
GROUP BY category
ORDER BY n_qa DESC, category;
