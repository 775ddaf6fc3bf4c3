-- The trail of one item through the stages: its own rows, its ancestors' rows and its children's
-- rows, so "why is clip X not in the dataset?" and "what became of video Y?" are one query.
-- $1: the item id (a video id like 'webvid:123', a clip id or a QA id).
-- Ordered as things happened: the oldest ancestor first, each item's stages in pipeline order
-- (haic_resources/storage/ledger_trail.py reads it).
WITH RECURSIVE
ancestors(item_id, depth) AS (
    SELECT $1, 0
    UNION
    SELECT l.parent_id, a.depth - 1
    FROM ledger AS l JOIN ancestors AS a ON l.item_id = a.item_id
    WHERE l.parent_id IS NOT NULL AND a.depth > -5
),
descendants(item_id, depth) AS (
    SELECT $1, 0
    UNION
    SELECT l.item_id, d.depth + 1
    FROM ledger AS l JOIN descendants AS d ON l.parent_id = d.item_id
    WHERE d.depth < 5
),
trail AS (
    SELECT item_id, min(depth) AS depth FROM (
        SELECT * FROM ancestors UNION ALL SELECT * FROM descendants
    ) GROUP BY item_id
)
SELECT
    t.depth, l.item_id, l.item_kind, l.stage, l.verdict, l.reason_code, l.reason, l.metric, l.value, l.threshold,
    l.partition, l.config_hash, l.code_version, l.run_id, l.decided_at, coalesce(o.position, 999) AS position
FROM ledger AS l
JOIN trail AS t USING (item_id)
LEFT JOIN stage_order AS o USING (stage)
ORDER BY t.depth, l.item_id, coalesce(o.position, 999), l.decided_at
