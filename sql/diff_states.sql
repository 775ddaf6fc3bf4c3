-- The partition's ledger as it stood at two moments ($before, $after): per stage, the newest snapshot
-- written by then (a stage a run did not re-run keeps its earlier rows).
CREATE OR REPLACE TEMP TABLE diff_states AS
WITH chosen AS (
    SELECT stage,
           max(snapshot_at) FILTER (WHERE snapshot_at <= $before) AS before_at,
           max(snapshot_at) FILTER (WHERE snapshot_at <= $after)  AS after_at
    FROM diff_snapshots
    GROUP BY stage
)
SELECT 'before' AS side, s.* FROM diff_snapshots AS s JOIN chosen AS c ON s.stage = c.stage AND s.snapshot_at = c.before_at
UNION ALL
SELECT 'after' AS side, s.* FROM diff_snapshots AS s JOIN chosen AS c ON s.stage = c.stage AND s.snapshot_at = c.after_at
