-- The per-partition count files as one view for the funnel, read as one schema (no union by name:
-- DuckDB then reads one file's schema, not 7,000). A file whose columns differ fails the query, and
-- the funnel falls back to the ledger rows. {files}: the count files' glob.
CREATE OR REPLACE VIEW ledger_counts AS
SELECT * FROM read_parquet({files});
