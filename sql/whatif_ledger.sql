-- The ledger rows a what-if re-decides: the curation chain's stages, of one source and/or one
-- partition ($source, $partition: NULL for all). Columns by name: the ledger may gain columns.
CREATE OR REPLACE TEMP TABLE whatif_ledger AS
SELECT
    CAST(l.stage AS VARCHAR)       AS stage,
    CAST(l.partition AS VARCHAR)   AS partition,
    CAST(l.source AS VARCHAR)      AS source,
    CAST(l.item_id AS VARCHAR)     AS item_id,
    CAST(l.parent_id AS VARCHAR)   AS parent_id,
    CAST(l.item_kind AS VARCHAR)   AS item_kind,
    CAST(l.verdict AS VARCHAR)     AS verdict,
    CAST(l.reason_code AS VARCHAR) AS reason_code,
    CAST(l.metric AS VARCHAR)      AS metric,
    CAST(l.value AS DOUBLE)        AS value,
    CAST(l.threshold AS DOUBLE)    AS threshold,
    CAST(l.detail AS VARCHAR)      AS detail
FROM ledger AS l
WHERE list_contains($stages, l.stage)
  AND ($source IS NULL OR l.source = $source)
  AND ($partition IS NULL OR l.partition = $partition)
