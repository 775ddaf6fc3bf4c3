    UNION ALL
    SELECT
        CAST(h.stage AS VARCHAR), CAST(h.item_id AS VARCHAR), CAST(h.verdict AS VARCHAR),
        CAST(h.reason_code AS VARCHAR), CAST(h.reason AS VARCHAR),
        CAST(h.metric AS VARCHAR), CAST(h.value AS DOUBLE), CAST(h.threshold AS DOUBLE),
        CAST(h.config_hash AS VARCHAR), CAST(h.code_version AS VARCHAR),
        CAST(h.snapshot_run AS VARCHAR), h.snapshot_at
    FROM ledger_history AS h
    WHERE h.partition = $partition
