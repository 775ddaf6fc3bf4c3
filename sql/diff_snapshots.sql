-- Every kept run of one partition's ledger ($partition): the current rows, each stage's stamped with
-- the run that wrote them (the newest row's run) and when, and, where the view exists, the earlier
-- runs' rows of ledger_history (already stamped), filled in below by the engine where it exists.
CREATE OR REPLACE TEMP TABLE diff_snapshots AS
SELECT * FROM (
    SELECT
        CAST(l.stage AS VARCHAR) AS stage, CAST(l.item_id AS VARCHAR) AS item_id, CAST(l.verdict AS VARCHAR) AS verdict,
        CAST(l.reason_code AS VARCHAR) AS reason_code, CAST(l.reason AS VARCHAR) AS reason,
        CAST(l.metric AS VARCHAR) AS metric, CAST(l.value AS DOUBLE) AS value, CAST(l.threshold AS DOUBLE) AS threshold,
        CAST(l.config_hash AS VARCHAR) AS config_hash, CAST(l.code_version AS VARCHAR) AS code_version,
        arg_max(CAST(l.run_id AS VARCHAR), l.decided_at) OVER (PARTITION BY l.stage) AS snapshot_run,
        max(l.decided_at) OVER (PARTITION BY l.stage) AS snapshot_at
    FROM ledger AS l
    WHERE l.partition = $partition
    {history}
)
