-- When the snapshots a selector names were written: a run id, settings hash or code version (or a
-- prefix of one); the latest such moment.
SELECT max(snapshot_at)
FROM diff_snapshots
WHERE starts_with(snapshot_run, $selector) OR starts_with(config_hash, $selector)
   OR starts_with(code_version, $selector)
