-- The partitions whose ledger rows name the given keys (item ids and parent ids): the main index
-- file (sorted by key, in small row groups, so DuckDB reads only the row groups whose key range
-- holds a key) and the deltas written since it was merged.
-- {files}: the index files; {keys}: the keys, as a list of string literals (constants, so that
-- the filter reaches the Parquet reader and its row-group statistics).
SELECT DISTINCT key, partition
FROM read_parquet({files}, union_by_name = true)
WHERE key IN ({keys})
