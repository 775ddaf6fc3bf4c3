-- Per stage: which run (and settings hash, code version) each side's rows come from, how many items
-- each side has, and how many changed, by kind (diff_changed: the rows of diff_changes.sql).
WITH sides AS (
    SELECT stage,
           any_value(snapshot_run) FILTER (WHERE side = 'before') AS run_before,
           any_value(snapshot_run) FILTER (WHERE side = 'after')  AS run_after,
           string_agg(DISTINCT config_hash, ',') FILTER (WHERE side = 'before') AS config_before,
           string_agg(DISTINCT config_hash, ',') FILTER (WHERE side = 'after')  AS config_after,
           count(*) FILTER (WHERE side = 'before') AS items_before,
           count(*) FILTER (WHERE side = 'after')  AS items_after
    FROM diff_states
    GROUP BY stage
)
SELECT
    s.stage, s.run_before, s.run_after, s.config_before, s.config_after, s.items_before, s.items_after,
    count(c.item_id) FILTER (WHERE c.change = 'verdict') AS verdict,
    count(c.item_id) FILTER (WHERE c.change = 'reason')  AS reason,
    count(c.item_id) FILTER (WHERE c.change = 'value')   AS value,
    count(c.item_id) FILTER (WHERE c.change = 'added')   AS added,
    count(c.item_id) FILTER (WHERE c.change = 'removed') AS removed
FROM sides AS s
LEFT JOIN diff_changed AS c USING (stage)
LEFT JOIN stage_order AS o USING (stage)
GROUP BY s.stage, s.run_before, s.run_after, s.config_before, s.config_after, s.items_before, s.items_after, o.position
ORDER BY coalesce(o.position, 999), s.stage
