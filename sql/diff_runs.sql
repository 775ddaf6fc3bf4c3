-- The runs of the partition whose ledger rows are kept (diff_snapshots), oldest first, with the stages
-- each wrote and their settings hashes and code versions.
SELECT
    snapshot_run AS run_id,
    max(snapshot_at) AS written_at,
    string_agg(DISTINCT stage, ', ' ORDER BY stage) AS stages,
    string_agg(DISTINCT config_hash, ', ' ORDER BY config_hash) AS config_hashes,
    string_agg(DISTINCT code_version, ', ' ORDER BY code_version) AS code_versions
FROM diff_snapshots
GROUP BY snapshot_run
ORDER BY written_at
