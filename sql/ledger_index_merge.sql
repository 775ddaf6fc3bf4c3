-- Merge the ledger index's deltas into one file sorted by key, in row groups of {row_group_rows}
-- rows: a lookup reads the row groups whose key range holds its key, not the file.
-- {files}: the main file and the deltas; {target}: where the merged file is written.
COPY (
    SELECT DISTINCT key, partition FROM read_parquet({files}, union_by_name = true)
    ORDER BY key, partition
) TO {target} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {row_group_rows})
